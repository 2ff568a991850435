"""Adam over the weight slices a supernet step used, exact per element.

In a supernet step a path uses slices of the weights, and different paths touch different
elements. `SlicedAdam` keeps Adam's state per element (`exp_avg`, `exp_avg_sq`, and `step`:
how many updates THAT element had), updates the touched elements only, and bias-corrects
each with its own count. So on any path, for the elements it touches, a step is exactly
`torch.optim.Adam`'s step on the materialized subnet whose state holds those elements'
moments and counts: an element first touched at step 100 takes Adam's first step, and an
element a path leaves alone keeps its value and moments (no decay, no momentum drift).

The arithmetic is torch Adam's (single-tensor, non-capturable, no amsgrad): the same ops in
the same order, the bias corrections computed in Python doubles as torch computes them, so
the results are bit-identical to it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, Optional

import torch
import torch.distributed as dist

from nasrec_torchrec.nn.elastic import SliceGradients
from nasrec_torchrec.train.sliced_optimizer import Index, SlicedOptimizer


@lru_cache(maxsize=8)
def _corrections(beta1: float, beta2: float, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For counts `k < size`: `1 - beta1**k` (float64) and `sqrt(1 - beta2**k)` (float32),
    computed as torch Adam computes them for its step `k` (Python floats)."""
    first = [1 - beta1 ** float(k) for k in range(size)]
    second = [(1 - beta2 ** float(k)) ** 0.5 for k in range(size)]
    return (torch.tensor(first, dtype=torch.float64),
            torch.tensor(second, dtype=torch.float32))


def bias_corrections(beta1: float, beta2: float, counts: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """`(1 - beta1**counts [float64], sqrt(1 - beta2**counts) [float32])` elementwise, for
    non-negative integer `counts` (tables grown in powers of two and cached)."""
    size = 1 << max(int(counts.max()), 1).bit_length()
    first, second = _corrections(beta1, beta2, size)
    index = counts.long()
    return first[index], second[index]


class SlicedAdam(SlicedOptimizer):
    """`torch.optim.Adam` (L2 `weight_decay`, no amsgrad) per element, over recorded slice
    gradients and ordinary `.grad` tensors.

    Parameters with an ordinary `.grad` (layers that are not elastic, data-parallel tables)
    have every element updated, as torch Adam does. The gradients are averaged over the ranks
    and clipped first (`SlicedOptimizer`); `weight_decay` then adds `weight_decay * w` to the
    gradient of each updated element, as torch Adam does.

    The state of each parameter: `exp_avg`, `exp_avg_sq` (its shape, zero) and `step` (its
    shape, int32: the updates each element had), created here so a checkpoint loads into it.

    Args:
        params: parameters (or groups, which may set `lr`, `betas`, `eps`, `weight_decay` and
            `synchronised`) to optimise.
        store: the slice gradients recorded by the supernet during backward.
        lr: learning rate; betas: Adam's (beta1, beta2); eps: added to the root of the
            second moment; weight_decay: L2 penalty added to the gradient.
        process_group: ranks whose gradients are averaged (default: the world).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).

    Example::

        store = SliceGradients()
        attach_slice_gradients(supernet, store)
        optimizer = SlicedAdam(supernet.parameters(), store, lr=1e-3)
        supernet(dense, sparse, path).sum().backward()  # records the path's slices
        optimizer.step()  # updates those slices only
    """

    def __init__(self, params: Iterable, store: SliceGradients, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, process_group: Optional[dist.ProcessGroup] = None,
                 max_grad_norm: Optional[float] = None) -> None:
        super().__init__(params, store, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                         "weight_decay": weight_decay},
                         process_group, max_grad_norm)
        for group in self.param_groups:
            for parameter in group["params"]:
                self.state[parameter].update({
                    "step": torch.zeros_like(parameter, dtype=torch.int32,
                                             memory_format=torch.preserve_format),
                    "exp_avg": torch.zeros_like(parameter, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(parameter,
                                                   memory_format=torch.preserve_format)})

    def update(self, parameter: torch.Tensor, index: Index, grad: torch.Tensor,
               group: dict[str, Any]) -> None:
        """One Adam step of every element of `parameter[index]`, each with its own count."""
        param = parameter[index]
        if param.numel() == 0:
            return
        state = self.state[parameter]
        exp_avg, exp_avg_sq = state["exp_avg"][index], state["exp_avg_sq"][index]
        counts = state["step"][index]
        counts.add_(1)
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        first, second_root = bias_corrections(beta1, beta2, counts)
        # torch: step_size = lr / (1 - beta1**step) in double, rounded to the param's dtype
        step_size = torch.div(torch.tensor(group["lr"], dtype=torch.float64), first)
        denom = (exp_avg_sq.sqrt() / second_root).add_(group["eps"])
        # torch's addcdiv_(exp_avg, denom, value=-step_size): param + (-step_size * m) / denom
        param.add_(exp_avg.mul(step_size.to(param.dtype).neg_()).div_(denom))
