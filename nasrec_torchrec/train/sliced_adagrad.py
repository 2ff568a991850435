"""Adagrad over the weight slices a supernet step used (`train.sliced_optimizer`).

`SlicedAdagrad` applies the same update as `torch.optim.Adagrad` would with full-size
gradients (zero outside the slices leaves both the weights and the accumulators unchanged
there), touching the slices only.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
import torch.distributed as dist

from nasrec_torchrec.nn.elastic import SliceGradients
from nasrec_torchrec.train.sliced_optimizer import Index, SlicedOptimizer


class SlicedAdagrad(SlicedOptimizer):
    """`torch.optim.Adagrad` (no lr decay, no weight decay) over recorded slice gradients.

    Parameters with an ordinary `.grad` (layers that are not elastic) get the ordinary
    Adagrad update. The gradients are averaged over the ranks and clipped first
    (`SlicedOptimizer`).

    Args:
        params: parameters (or groups) to optimise.
        store: the slice gradients recorded by the supernet during backward.
        lr: learning rate; eps: added to the root of the accumulator.
        initial_accumulator_value: start value of the accumulators.
        process_group: ranks whose slice gradients are averaged (default: the world).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
    """

    def __init__(self, params: Iterable, store: SliceGradients, lr: float = 0.04,
                 eps: float = 1e-10, initial_accumulator_value: float = 0.0,
                 process_group: Optional[dist.ProcessGroup] = None,
                 max_grad_norm: Optional[float] = None) -> None:
        super().__init__(params, store, {"lr": lr, "eps": eps}, process_group, max_grad_norm)
        for group in self.param_groups:
            for parameter in group["params"]:
                self.state[parameter]["sum"] = torch.full_like(
                    parameter, initial_accumulator_value, memory_format=torch.preserve_format)

    def update(self, parameter: torch.Tensor, index: Index, grad: torch.Tensor,
               group: dict[str, Any]) -> None:
        """Adagrad on `parameter[index]`: accumulate `grad²`, step by `lr g / (√sum + eps)`."""
        accumulator = self.state[parameter]["sum"][index]
        accumulator.addcmul_(grad, grad, value=1.0)
        parameter[index].addcdiv_(grad, accumulator.sqrt().add_(group["eps"]),
                                  value=-group["lr"])
