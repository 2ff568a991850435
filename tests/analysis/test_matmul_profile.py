"""The matrix products of a step, recorded with their shapes and timed alone."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nasrec_torchrec.analysis.matmul_profile import (GemmCall, gemm_calls,
                                                     isolated_cpu_seconds, top_shapes)


def _linear_and_bmm_step() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32)
    x = torch.randn(8, 64, requires_grad=True)
    rows = torch.randn(4, 5, 16, requires_grad=True)
    (layer(x).sum() + torch.bmm(rows, rows.transpose(1, 2)).sum()).backward()


def test_gemm_calls_record_every_product_of_forward_and_backward():
    calls = gemm_calls(_linear_and_bmm_step)
    # forward addmm [8,64]@[64,32]; backward: input grad [8,32]@[32,64], weight grad 32x8x64
    assert GemmCall(1, 8, 64, 32, torch.float32, False, True) in calls
    assert sorted((c.rows, c.inner, c.cols) for c in calls if c.batch == 1) == [
        (8, 32, 64), (8, 64, 32), (32, 8, 64)]
    assert {(c.batch, c.rows, c.inner, c.cols) for c in calls if c.batch > 1} >= {(4, 5, 16, 5)}
    with FlopCounterMode(display=False) as counter:
        _linear_and_bmm_step()
    assert sum(call.flops for call in calls) == counter.get_total_flops()


def test_top_shapes_rank_two_dimensional_products_by_flops():
    calls = [GemmCall(1, 8, 8, 8, torch.float32)] * 3 + [GemmCall(1, 16, 16, 16, torch.float32),
                                                        GemmCall(64, 32, 32, 32, torch.float32)]
    assert top_shapes(calls, 1) == [(16, 16, 16)]  # 8192 FLOPs > 3 x 1024; bmm left out
    assert top_shapes(calls, 5) == [(16, 16, 16), (8, 8, 8)]


@pytest.mark.usefixtures("one_thread")  # timed on this thread's clock
def test_isolated_seconds_grow_with_the_calls():
    call = GemmCall(1, 64, 64, 64, torch.float32)
    one = isolated_cpu_seconds([call], budget=0.02)
    assert one > 0
    assert isolated_cpu_seconds([call] * 10, budget=0.02) > 3 * one
