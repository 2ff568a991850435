"""FLOPs per sample: fvcore's convention (1 per multiply-add), cached by canonical form."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from nasrec_torchrec.analysis.flops import architecture_cost, count_flops  # noqa: E402
from nasrec_torchrec.space import get_space, sample_architecture  # noqa: E402


class _TwoLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(13, 8)
        self.rows = torch.nn.Linear(26, 4)

    def forward(self, dense, sparse):
        return self.dense(dense).sum() + self.rows(sparse.transpose(1, 2)).sum()


def test_flops_count_one_per_multiply_add():
    # 13*8 MACs for the dense FC, 26*4 per embedding column times 16 columns
    assert count_flops(_TwoLinear(), 13, 26, 16) == 13 * 8 + 26 * 4 * 16


def test_architecture_cost_is_per_sample_and_half_of_flop_counter_mode():
    from torch.utils.flop_counter import FlopCounterMode

    from nasrec_torchrec.nn.networks import NASRecNet

    architecture = sample_architecture(get_space("nasrec-small"), random.Random(1))
    cost = architecture_cost(architecture, 13, 26)
    net = NASRecNet(architecture, 13, 26)
    assert cost.params == sum(p.numel() for p in net.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(4, 13), torch.zeros(4, 26, 16))
    matmul_flops = counter.get_total_flops() / 4  # per sample, 2 per multiply-add
    # fvcore also counts LayerNorm and elementwise work; matmuls dominate
    assert cost.flops >= matmul_flops / 2
    assert cost.flops < matmul_flops / 2 * 1.2


def test_architecture_cost_ignores_dead_genes():
    space = get_space("nasrec-small")
    architecture = sample_architecture(space, random.Random(2))
    assert architecture_cost(architecture, 13, 26) == architecture_cost(
        architecture.canonical(), 13, 26)


class _ScaledScores(torch.nn.Module):
    """Attention scores as `baddbmm` (alpha-scaled) and as `bmm`: the same multiply-adds."""

    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.fused = fused

    def forward(self, dense, sparse):
        if self.fused:
            zeros = sparse.new_zeros(()).expand(sparse.shape[0], sparse.shape[1], sparse.shape[1])
            return torch.baddbmm(zeros, sparse, sparse.transpose(1, 2), beta=0.0, alpha=0.25)
        return torch.bmm(sparse, sparse.transpose(1, 2)) / 4


@pytest.mark.parametrize("fused", [True, False])
def test_baddbmm_counts_its_batched_product(fused):
    # [1, 26, 16] @ [1, 16, 26]: 26 * 16 * 26 multiply-adds, however the product is written
    assert count_flops(_ScaledScores(fused), 13, 26, 16) == 26 * 16 * 26


@pytest.mark.parametrize("fused", [True, False])
def test_fast_counter_agrees_on_baddbmm(fused):
    from nasrec_torchrec.search.cost import count_flops as fast_count_flops

    assert fast_count_flops(_ScaledScores(fused), 13, 26, 16) == 26 * 16 * 26


def _one_block(dense_op: str, dense_dim: int, sparse_dim: int):
    from nasrec_torchrec.space import Architecture, Block

    return Architecture(blocks=(Block(dense_sources=(0,), sparse_sources=(0,), dense_left=0,
                                      dense_right=0, dense_ops=(dense_op,),
                                      sparse_ops=("embed_fc",), dense_dim=dense_dim,
                                      sparse_dim=sparse_dim),))


@pytest.mark.parametrize("dense_op, operator_flops", [
    ("fm", 16 * 32),  # W_fm: E -> d (the sums of squares are elementwise: 0)
    ("cross", 13 * 32 + 32 * 32),  # P: Dn -> d, then W: d -> d (the product x0 * ...: 0)
])
def test_fm_and_cross_are_counted_by_both_counters(dense_op, operator_flops):
    from nasrec_torchrec.nn.networks import NASRecNet
    from nasrec_torchrec.search.cost import subnet_cost

    d, n, dn, f, e = 32, 8, 13, 26, 16
    # operator + its LayerNorm (5 per unit), EmbedFC F -> n rows over E + its LayerNorm, head
    expected = operator_flops + 5 * d + n * f * e + 5 * n * e + (d + n * e)
    architecture = _one_block(dense_op, d, n)
    assert architecture_cost(architecture, dn, f, e).flops == expected
    assert subnet_cost(NASRecNet(architecture, dn, f, e)).flops == expected
