"""The matrix products a step runs, and what they would cost alone.

A step's speed against the host's peak has two factors: the share of the step spent in
matrix products, and how fast the kernel runs at the step's own (often small or narrow)
shapes. `gemm_calls` records every product of a callable (forward and backward) with its
shape; `isolated_cpu_seconds` times each distinct shape alone, so

    ceiling = sum(call.flops) / isolated_cpu_seconds(calls)

is the GFLOP per CPU second the step would reach if everything outside the products were
free: the kernel's own efficiency at these shapes.

    calls = gemm_calls(lambda: model(dense, sparse).sum().backward())
    peak = matmul_peak(top_shapes(calls, 4))
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
# product op -> (index of the left factor, index of the right factor)
_PRODUCTS = {_aten.mm.default: (0, 1), _aten.addmm.default: (1, 2),
             _aten.bmm.default: (0, 1), _aten.baddbmm.default: (1, 2)}


@dataclass(frozen=True)
class GemmCall:
    """One matrix product: `batch` products `[rows, inner] @ [inner, cols]` in `dtype`;
    `left_transposed` / `right_transposed`: the factor is stored column-major (a `.t()`)."""

    batch: int
    rows: int
    inner: int
    cols: int
    dtype: torch.dtype
    left_transposed: bool = False
    right_transposed: bool = False

    @property
    def flops(self) -> float:
        """2 FLOPs per multiply-add (the convention of `torch.utils.flop_counter`)."""
        return 2.0 * self.batch * self.rows * self.inner * self.cols


def _column_major(tensor: torch.Tensor) -> bool:
    return tensor.stride(-2) == 1 and tensor.stride(-1) != 1


def _factor(batch: tuple[int, ...], rows: int, cols: int, transposed: bool,
            dtype: torch.dtype) -> torch.Tensor:
    if transposed:
        return torch.randn(*batch, cols, rows).to(dtype).transpose(-1, -2)
    return torch.randn(*batch, rows, cols).to(dtype)


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[GemmCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _PRODUCTS:
            left, right = (args[i] for i in _PRODUCTS[func])
            batch = left.shape[0] if left.dim() == 3 else 1
            self.calls.append(GemmCall(batch, left.shape[-2], left.shape[-1], right.shape[-1],
                                       left.dtype, _column_major(left), _column_major(right)))
        return func(*args, **(kwargs or {}))


def gemm_calls(run: Callable[[], object]) -> list[GemmCall]:
    """The matrix products `run()` dispatches (a forward and its backward, say), in order."""
    recorder = _Recorder()
    with recorder:
        run()
    return recorder.calls


def top_shapes(calls: list[GemmCall], count: int) -> list[tuple[int, int, int]]:
    """The `count` 2-D product shapes `(rows, inner, cols)` carrying the most FLOPs."""
    totals: Counter = Counter()
    for call in calls:
        if call.batch == 1:
            totals[(call.rows, call.inner, call.cols)] += call.flops
    return [shape for shape, _ in totals.most_common(count)]


def _cpu_seconds_of(call: GemmCall, budget: float) -> float:
    """CPU seconds of one product of `call`'s shape and dtype, best of repeats in `budget`."""
    shape = (call.batch,) if call.batch > 1 else ()
    left = _factor(shape, call.rows, call.inner, call.left_transposed, call.dtype)
    right = _factor(shape, call.inner, call.cols, call.right_transposed, call.dtype)
    product = torch.bmm if call.batch > 1 else torch.mm
    # on one intra-op thread the product runs on this thread: its own clock ignores whatever
    # other threads of the process (a loader, a process group's) spend meanwhile
    clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
    for _ in range(2):
        product(left, right)
    best, deadline = float("inf"), time.perf_counter() + budget
    while time.perf_counter() < deadline:
        repeats, start = 0, clock()
        while repeats < 3 or clock() - start < 0.01:
            product(left, right)
            repeats += 1
        best = min(best, (clock() - start) / repeats)
    return best


def isolated_cpu_seconds(calls: list[GemmCall], budget: float = 0.05) -> float:
    """CPU seconds of all `calls` if each ran as fast as its shape does alone (current
    threads: on one, the calling thread's CPU time, else the process's; `budget` wall
    seconds of timing per distinct shape)."""
    counts = Counter(calls)
    return sum(count * _cpu_seconds_of(call, budget) for call, count in counts.items())
