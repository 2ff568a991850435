"""The scorer's fast FLOP count equals fvcore's (analysis.flops) on random subnets."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")

from nasrec_torchrec.analysis.flops import architecture_cost  # noqa: E402
from nasrec_torchrec.nn.networks import NASRecNet  # noqa: E402
from nasrec_torchrec.search.cost import count_flops, subnet_cost  # noqa: E402
from nasrec_torchrec.space import get_space, sample_architecture  # noqa: E402


@pytest.mark.parametrize("space_name", ["nasrec-small", "nasrec-full", "official-full",
                                        "nasrec-full-plus"])
def test_fast_count_equals_fvcore_on_random_subnets(space_name):
    space = get_space(space_name)
    rng = random.Random(11)
    for _ in range(3):
        architecture = sample_architecture(space, rng)
        net = NASRecNet(architecture, 13, 26)
        expected = architecture_cost(architecture, 13, 26)
        assert subnet_cost(net) == expected, architecture


def test_counts_a_linear_and_a_layer_norm_by_hand():
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(13, 8)
            self.norm = torch.nn.LayerNorm(16)

        def forward(self, dense, sparse):
            rows = self.norm(sparse)  # [1, 26, 16]: 5 per element
            gram = torch.bmm(rows, rows.transpose(1, 2))  # 26 * 16 * 26
            return self.linear(dense).sum() + gram.sum()

    assert count_flops(Tiny(), 13, 26, 16) == 13 * 8 + 5 * 26 * 16 + 26 * 16 * 26


def test_fast_count_equals_fvcore_on_batch_norm_subnets_in_eval_mode():
    from nasrec_torchrec.analysis.flops import count_flops as fvcore_flops

    space = get_space("official-full")
    rng = random.Random(5)
    for _ in range(3):
        net = NASRecNet(sample_architecture(space, rng), 13, 26, batch_norm=True).eval()
        assert count_flops(net, 13, 26, 16) == fvcore_flops(net, 13, 26, 16)
