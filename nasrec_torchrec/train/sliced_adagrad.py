"""Adagrad and gradient all-reduce over the weight slices a supernet step used.

With `nn.elastic.attach_slice_gradients`, a supernet records the gradients of the slices
its path used instead of full-size `.grad` tensors. `SlicedAdagrad` applies the same update
as `torch.optim.Adagrad` would with full-size gradients (zero outside the slices leaves both
the weights and the accumulators unchanged there), touching the slices only, and
`all_reduce_gradients` averages them across ranks in one collective. Every rank draws
the same path, so the recorded slices line up. With `max_grad_norm`, the averaged gradients
(slices and ordinary ones) are scaled as `torch.nn.utils.clip_grad_norm_` would scale the
full-size gradients (the slices of one step do not overlap, so their norm is the full one's).
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
import torch.distributed as dist

from nasrec_torchrec.nn.elastic import Ranges, SliceGradients


def _column_parts(ranges: Optional[Ranges]) -> list[tuple[int, int, int]]:
    """`(gradient column, parameter column, width)` of each range (None: 1-D prefix)."""
    if ranges is None:
        return []
    parts, offset = [], 0
    for start, width in ranges:
        parts.append((offset, start, width))
        offset += width
    return parts


class SlicedAdagrad(torch.optim.Optimizer):
    """`torch.optim.Adagrad` (no lr decay, no weight decay) over recorded slice gradients.

    `step()` first averages the gradients over the ranks of `process_group` (when
    torch.distributed is initialised), so it also serves inside TorchRec's train pipelines,
    which call `optimizer.step()` themselves, and the parameters must not be under DDP.
    Parameters with an ordinary `.grad` (layers that are not elastic) get the ordinary
    Adagrad update. With `max_grad_norm`, the global L2 norm of all averaged gradients
    (recorded slices and ordinary `.grad`) is clipped to it before the update, as
    `torch.nn.utils.clip_grad_norm_` does (the same on every rank).

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
        super().__init__(params, {"lr": lr, "eps": eps})
        self.store = store
        self.process_group = process_group
        self.max_grad_norm = max_grad_norm
        for group in self.param_groups:
            for parameter in group["params"]:
                self.state[parameter]["sum"] = torch.full_like(
                    parameter, initial_accumulator_value, memory_format=torch.preserve_format)

    @staticmethod
    def _update(parameter: torch.Tensor, accumulator: torch.Tensor, grad: torch.Tensor,
                lr: float, eps: float) -> None:
        accumulator.addcmul_(grad, grad, value=1.0)
        parameter.addcdiv_(grad, accumulator.sqrt().add_(eps), value=-lr)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer API
        loss = closure() if closure is not None else None
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        all_reduce_gradients(self.store, grads, self.process_group)
        if self.max_grad_norm is not None:
            clip_gradients(self.store, grads, self.max_grad_norm)
        group_of = {id(p): group for group in self.param_groups for p in group["params"]}
        for parameter, rows, ranges, grad in self.store.sorted_entries():
            group = group_of.get(id(parameter))
            if group is None:
                continue
            accumulator = self.state[parameter]["sum"]
            if ranges is None:
                self._update(parameter[:rows], accumulator[:rows], grad, group["lr"], group["eps"])
                continue
            for offset, start, width in _column_parts(ranges):
                self._update(parameter[:rows, start:start + width],
                             accumulator[:rows, start:start + width],
                             grad[:, offset:offset + width], group["lr"], group["eps"])
        self.store.clear()
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    self._update(parameter, self.state[parameter]["sum"], parameter.grad,
                                 group["lr"], group["eps"])
        return loss


def clip_gradients(store: SliceGradients, grads: list[torch.Tensor], max_norm: float) -> None:
    """Scale the recorded slice gradients and `grads` (in place) by
    `min(1, max_norm / (total L2 norm + 1e-6))`, as `torch.nn.utils.clip_grad_norm_`."""
    tensors = [grad for _, _, _, grad in store.entries] + grads
    if not tensors:
        return
    total = torch.nn.utils.get_total_norm(tensors)
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    store.entries = [(parameter, rows, ranges, grad * scale)
                     for parameter, rows, ranges, grad in store.entries]
    for grad in grads:
        grad.mul_(scale)


def all_reduce_gradients(store: SliceGradients, grads: list[torch.Tensor],
                         group: Optional[dist.ProcessGroup] = None) -> None:
    """Average the recorded slice gradients and the ordinary `grads` over the ranks of
    `group`, in one all-reduce (every rank ran the same path, so the shapes line up)."""
    if not dist.is_initialized() or dist.get_world_size(group) == 1:
        return
    entries = store.sorted_entries()
    tensors = [grad for _, _, _, grad in entries] + grads
    if not tensors:
        return
    flat = torch.cat([tensor.reshape(-1) for tensor in tensors])
    dist.all_reduce(flat, group=group)
    flat /= dist.get_world_size(group)
    offset = 0
    averaged = []
    for tensor in tensors:
        averaged.append(flat[offset:offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()
    store.entries = [(parameter, rows, ranges, grad) for (parameter, rows, ranges, _), grad
                     in zip(entries, averaged)]
    for grad, value in zip(grads, averaged[len(entries):]):
        grad.copy_(value)
