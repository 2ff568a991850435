"""What the optimizers over a supernet's recorded slice gradients share.

With `nn.elastic.attach_slice_gradients`, a supernet records the gradients of the slices its
path used instead of full-size `.grad` tensors. A `SlicedOptimizer` step averages them (and
the ordinary `.grad` of the parameters DDP leaves alone) across ranks in one collective,
optionally clips the global norm, then applies its update rule to each recorded slice and to
each parameter with an ordinary `.grad`. Every rank draws the same path, so the recorded
slices line up. With `max_grad_norm`, the averaged gradients (slices and ordinary ones) are
scaled as `torch.nn.utils.clip_grad_norm_` would scale the full-size gradients (the slices
of one step do not overlap, so their norm is the full one's).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
import torch.distributed as dist

from nasrec_torchrec.nn.elastic import Ranges, SliceGradients

Index = tuple[Any, ...]
"""An index into a parameter (and its state tensors): the part one update touches."""

WHOLE: Index = (Ellipsis,)
"""The index of a whole parameter."""


def slice_parts(rows: int, ranges: Optional[Ranges], grad: torch.Tensor
                ) -> list[tuple[Index, torch.Tensor]]:
    """`(index into the parameter, gradient of that part)` of a recorded slice: the first
    `rows` rows and, per column range, its columns (`ranges` None: a 1-D prefix)."""
    if ranges is None:
        return [((slice(None, rows),), grad)]
    parts, offset = [], 0
    for start, width in ranges:
        parts.append(((slice(None, rows), slice(start, start + width)),
                      grad[:, offset:offset + width]))
        offset += width
    return parts


class SlicedOptimizer(torch.optim.Optimizer):
    """A torch optimizer over recorded slice gradients and ordinary `.grad` tensors.

    `step()` first averages the gradients over the ranks of `process_group` (when
    torch.distributed is initialised), so it also serves inside TorchRec's train pipelines,
    which call `optimizer.step()` themselves; the parameters must not be under DDP, except
    those of a param group with `"synchronised": True` (gradients already averaged, e.g.
    data-parallel tables: left out of the all-reduce, included in the clipping). Subclasses
    implement `update(parameter, index, grad, group)`: the rule on `parameter[index]`.

    Args:
        params: parameters (or groups) to optimise.
        store: the slice gradients recorded by the supernet during backward.
        defaults: the update rule's defaults (`lr`...).
        process_group: ranks whose gradients are averaged (default: the world).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
    """

    def __init__(self, params: Iterable, store: SliceGradients, defaults: dict[str, Any],
                 process_group: Optional[dist.ProcessGroup] = None,
                 max_grad_norm: Optional[float] = None) -> None:
        super().__init__(params, {**defaults, "synchronised": False})
        self.store = store
        self.process_group = process_group
        self.max_grad_norm = max_grad_norm

    def update(self, parameter: torch.Tensor, index: Index, grad: torch.Tensor,
               group: dict[str, Any]) -> None:
        """Apply the rule to `parameter[index]` with its (reduced, clipped) `grad`."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer API
        loss = closure() if closure is not None else None
        grads = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        unsynchronised = [p.grad for group in self.param_groups if not group["synchronised"]
                          for p in group["params"] if p.grad is not None]
        all_reduce_gradients(self.store, unsynchronised, self.process_group)
        if self.max_grad_norm is not None:
            clip_gradients(self.store, grads, self.max_grad_norm)
        group_of = {id(p): group for group in self.param_groups for p in group["params"]}
        for parameter, rows, ranges, grad in self.store.sorted_entries():
            group = group_of.get(id(parameter))
            if group is None:
                continue
            for index, part in slice_parts(rows, ranges, grad):
                self.update(parameter, index, part, group)
        self.store.clear()
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    self.update(parameter, WHOLE, parameter.grad, group)
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
