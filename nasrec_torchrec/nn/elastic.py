"""Weight-sliced primitives: layers built at their largest size that run on a slice of it.

An input axis is a concatenation of *slots*, one per source (raw inputs or an earlier block).
A `Ranges` value lists, for the sources actually chosen, the `(start, width)` of the part of
each slot that is in use; the weight columns (or rows, for row-wise layers) at those ranges
are taken, in order, and nothing else is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DenseLayout:
    """Slots of a dense input axis: `source -> (start, max width)`, in source order."""

    slots: tuple[tuple[int, int, int], ...]  # (source, start, max_width)

    @classmethod
    def of(cls, widths: dict[int, int]) -> "DenseLayout":
        """Slots for `source -> max width`, laid out in increasing source order."""
        slots, start = [], 0
        for source in sorted(widths):
            slots.append((source, start, widths[source]))
            start += widths[source]
        return cls(tuple(slots))

    @property
    def width(self) -> int:
        """Total width of the axis."""
        return sum(slot[2] for slot in self.slots)

    def ranges(self, widths: dict[int, int]) -> Ranges:
        """Ranges of the chosen `source -> actual width` (each at most its slot's width)."""
        start_of = {source: start for source, start, _ in self.slots}
        return tuple((start_of[source], widths[source]) for source in sorted(widths)
                     if widths[source] > 0)


@dataclass(frozen=True)
class SparseLayout:
    """Slots of a sparse row axis: each source has branch rows, then Project-Concat rows."""

    slots: tuple[tuple[int, int, int, int], ...]  # (source, start, max_branch_rows, pc_rows)

    @classmethod
    def of(cls, rows: dict[int, tuple[int, int]]) -> "SparseLayout":
        """Slots for `source -> (max branch rows, Project-Concat rows)`, in source order."""
        slots, start = [], 0
        for source in sorted(rows):
            branch, pc = rows[source]
            slots.append((source, start, branch, pc))
            start += branch + pc
        return cls(tuple(slots))

    @property
    def rows(self) -> int:
        """Total rows of the axis."""
        return sum(slot[2] + slot[3] for slot in self.slots)

    def ranges(self, rows: dict[int, tuple[int, int]]) -> Ranges:
        """Ranges of the chosen `source -> (branch rows, Project-Concat rows)`."""
        slot_of = {slot[0]: slot for slot in self.slots}
        ranges: list[tuple[int, int]] = []
        for source in sorted(rows):
            _, start, max_branch, _ = slot_of[source]
            branch, pc = rows[source]
            if branch:
                ranges.append((start, branch))
            if pc:
                ranges.append((start + max_branch, pc))
        return tuple(ranges)


class SliceGradients:
    """Gradients of the weight slices a step used, collected instead of full-size `.grad`.

    In a supernet step an operator uses a slice of each weight; plain autograd would
    allocate, fill and later update a gradient as large as the whole weight. With a store
    attached (`attach_slice_gradients`), each slice's gradient is recorded here as
    `(parameter, rows, column ranges or None, gradient)`, so the optimizer update and the
    gradient all-reduce touch the slices only. `.grad` of sliced parameters stays None.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[nn.Parameter, int, Optional[Ranges], torch.Tensor]] = []
        self.order: dict[int, int] = {}

    def register(self, module: nn.Module) -> None:
        """Fix a rank-independent order of `module`'s parameters (for the all-reduce)."""
        for parameter in module.parameters():
            self.order.setdefault(id(parameter), len(self.order))

    def sorted_entries(self) -> list[tuple[nn.Parameter, int, Optional[Ranges], torch.Tensor]]:
        """Entries in the registered parameter order (the same on every rank)."""
        return sorted(self.entries, key=lambda entry: self.order[id(entry[0])])

    def clear(self) -> None:
        """Forget the recorded gradients (after the optimizer step)."""
        self.entries.clear()


class _RecordedSlice(torch.autograd.Function):
    """`parameter[:rows][:, ranges]` whose backward records the slice's gradient in a store."""

    @staticmethod
    def forward(ctx, parameter: torch.Tensor, rows: int, ranges: Optional[Ranges],
                store: SliceGradients, value: torch.Tensor) -> torch.Tensor:
        ctx.meta = (parameter, rows, ranges, store)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        parameter, rows, ranges, store = ctx.meta
        store.entries.append((parameter, rows, ranges, grad))
        return None, None, None, None, None


def _recorded(parameter: nn.Parameter, rows: int, ranges: Optional[Ranges],
              store: Optional[SliceGradients], value: torch.Tensor) -> torch.Tensor:
    """`value` (a slice of `parameter`), recording its gradient in `store` when one is attached."""
    if store is None or not (parameter.requires_grad and torch.is_grad_enabled()):
        return value
    return _RecordedSlice.apply(parameter, rows, ranges, store, value.detach())


def attach_slice_gradients(module: nn.Module, store: Optional[SliceGradients]) -> None:
    """Record the slice gradients of every elastic layer of `module` in `store` (None: detach)."""
    if store is not None:
        store.register(module)
    for layer in module.modules():
        if isinstance(layer, (ElasticLinear, ElasticLayerNorm, ElasticBatchNorm)):
            layer.gradient_store = store


def merge_adjacent(ranges: Ranges) -> Ranges:
    """The same columns with touching ranges joined: `((0, 13), (13, 64)) -> ((0, 77),)`."""
    merged: list[tuple[int, int]] = []
    for start, width in ranges:
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + width)
        else:
            merged.append((start, width))
    return tuple(merged)


def full_range(width: int) -> Ranges:
    """The ranges of a whole axis of `width`."""
    return ((0, width),) if width > 0 else ()


def _row_products(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`weight @ x[b] + bias[:, None]` for every b, as one batched product with the weight
    and bias broadcast: `x [B, N, E]` is read in place and the result is contiguous."""
    batch = x.shape[0]
    return torch.baddbmm(bias[:, None].expand(batch, -1, x.shape[2]),
                         weight.expand(batch, -1, -1), x)


class _RowLinear(torch.autograd.Function):
    """`_row_products` with a backward that keeps `[B, rows, E]` layouts: the input's
    gradient is one batched product, the weight's one matrix product over the B x E columns
    (plain `torch.matmul(weight, x)` transposes and copies `x`, its output and gradients)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return _row_products(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        batch, rows, width = grad.shape
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(weight.t().expand(batch, -1, -1), grad)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.mm(grad.transpose(0, 1).reshape(rows, batch * width),
                                   x.transpose(0, 1).reshape(x.shape[1], batch * width).t())
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2))
        return grad_x, grad_weight, grad_bias


def row_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A linear map along the row axis: `x [B, N, E]`, `weight [n, N]`, `bias [n]` ->
    `[B, n, E]` (`weight @ x[b] + bias[:, None]`); in fp32, the values of
    `torch.matmul(weight, x) + bias[:, None]` without its transposed copies. Under autocast
    or in another dtype, that plain expression (a bf16 batched product would materialise the
    broadcast weight); tracers and exports see the plain batched product."""
    if torch.is_autocast_enabled(x.device.type) or x.dtype != torch.float32:
        return torch.matmul(weight, x) + bias[:, None]
    tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()
    if not tracing and torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                                    or bias.requires_grad):
        return _RowLinear.apply(x, weight, bias)
    return _row_products(x, weight, bias)


class ElasticLinear(nn.Module):
    """A linear map `[out_max, in_max]` run on its first `out` rows and the columns `ranges`.

    Args:
        in_max: largest input width (all slots).
        out_max: largest output width.

    Example::

        layer = ElasticLinear(in_max=80, out_max=64)
        y = layer(x, out=32, ranges=((0, 16), (40, 24)))  # x: [B, 40] -> y: [B, 32]
    """

    def __init__(self, in_max: int, out_max: int) -> None:
        super().__init__()
        self.in_max: int = in_max
        self.out_max: int = out_max
        self.weight = nn.Parameter(torch.empty(out_max, in_max))
        self.bias = nn.Parameter(torch.empty(out_max))
        self.gradient_store: Optional[SliceGradients] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """`nn.Linear`'s initialisation at the maximum size."""
        bound = 1.0 / math.sqrt(max(self.in_max, 1))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def sliced_weight(self, out: int, ranges: Ranges) -> torch.Tensor:
        """The `[out, sum of widths]` weight in use (the parameter itself when whole: no
        slice node in the graph, whose backward would build a zero-filled full gradient)."""
        rows = self.weight if out == self.out_max else self.weight[:out]
        ranges = merge_adjacent(ranges)  # one slice (or none) instead of a concatenation
        if ranges == ((0, self.in_max),):
            value = rows
        elif len(ranges) == 1:
            start, width = ranges[0]
            value = rows[:, start:start + width]
        elif not ranges:
            value = rows[:, :0]
        else:
            value = torch.cat([rows[:, start:start + width] for start, width in ranges], dim=1)
        return _recorded(self.weight, out, ranges, self.gradient_store, value)

    def sliced_bias(self, out: int) -> torch.Tensor:
        """The first `out` biases."""
        value = self.bias if out == self.out_max else self.bias[:out]
        return _recorded(self.bias, out, None, self.gradient_store, value)

    def sliced_state(self, out: int, ranges: Ranges) -> dict[str, torch.Tensor]:
        """The state dict of an exact-size layer equal to this one on the slice."""
        return {"weight": self.sliced_weight(out, ranges).detach().clone(),
                "bias": self.sliced_bias(out).detach().clone()}

    def forward(self, x: torch.Tensor, out: int, ranges: Ranges) -> torch.Tensor:
        """`x [B, sum of widths] -> [B, out]`."""
        return F.linear(x, self.sliced_weight(out, ranges), self.sliced_bias(out))

    def forward_rows(self, x: torch.Tensor, out: int, ranges: Ranges) -> torch.Tensor:
        """Along the row axis: `x [B, sum of rows, E] -> [B, out, E]` (one bias per row)."""
        return row_linear(x, self.sliced_weight(out, ranges), self.sliced_bias(out))


class ElasticLayerNorm(nn.Module):
    """LayerNorm over the first `width` units, with the first `width` affine parameters."""

    def __init__(self, max_width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(max_width))
        self.bias = nn.Parameter(torch.zeros(max_width))
        self.gradient_store: Optional[SliceGradients] = None

    def sliced_state(self, width: int) -> dict[str, torch.Tensor]:
        """The state dict of an exact-size LayerNorm equal to this one at `width`."""
        return {"weight": self.weight[:width].detach().clone(),
                "bias": self.bias[:width].detach().clone()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last axis of `x` (its width is the active width)."""
        width = x.shape[-1]
        store = self.gradient_store
        whole = width == self.weight.shape[0]
        weight = self.weight if whole else self.weight[:width]
        bias = self.bias if whole else self.bias[:width]
        return F.layer_norm(x, (width,), _recorded(self.weight, width, None, store, weight),
                            _recorded(self.bias, width, None, store, bias))


class ElasticBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the first `width` units: the first `width` affine parameters and running
    statistics (a `BatchNorm1d` built at `max_width`; at full width it computes exactly what
    `nn.BatchNorm1d` does).

    In training mode a call normalises `x [B, width]` with its batch statistics (biased
    variance) and updates the first `width` running statistics (momentum, or the cumulative
    average when `momentum` is None, with the unbiased variance, as torch does); in eval mode
    it uses them. `num_batches_tracked` counts every training call, whatever its width. The
    statistics are this process's: under several ranks each rank normalises with its local
    batch and keeps its own running statistics (not synchronised).

    Example::

        norm = ElasticBatchNorm(64)
        y = norm(x)  # x: [B, 32] -> [B, 32], units 0..31
    """

    def __init__(self, max_width: int) -> None:
        super().__init__(max_width)
        self.gradient_store: Optional[SliceGradients] = None

    def sliced_state(self, width: int) -> dict[str, torch.Tensor]:
        """The state dict of an `nn.BatchNorm1d(width)` equal to this one at `width`."""
        return {"weight": self.weight[:width].detach().clone(),
                "bias": self.bias[:width].detach().clone(),
                "running_mean": self.running_mean[:width].clone(),
                "running_var": self.running_var[:width].clone(),
                "num_batches_tracked": self.num_batches_tracked.clone()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each of the `width` units of `x [B, width]` (its width is the active one)."""
        width = x.shape[-1]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the cumulative average
                factor = 1.0 / float(self.num_batches_tracked)
        store = self.gradient_store
        whole = width == self.num_features
        weight = self.weight if whole else self.weight[:width]
        bias = self.bias if whole else self.bias[:width]
        running_mean = self.running_mean if whole else self.running_mean[:width]
        running_var = self.running_var if whole else self.running_var[:width]
        return F.batch_norm(x, running_mean, running_var,
                            _recorded(self.weight, width, None, store, weight),
                            _recorded(self.bias, width, None, store, bias),
                            self.training, factor, self.eps)
