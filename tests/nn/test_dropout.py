"""NASRecNet's dropout: on every live block's dense output while training, nothing in eval."""

from __future__ import annotations

import random

import pytest
import torch

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.networks import NASRecNet
from nasrec_torchrec.space import get_space, sample_any_op_any_conn


def _pair(p: float) -> tuple[NASRecNet, NASRecNet]:
    """A net with dropout `p` and the same net (same weights) without dropout."""
    architecture = sample_any_op_any_conn(get_space("nasrec-small"), random.Random(2))
    dropped = NASRecNet(architecture, 4, 3, embedding_dim=4, dropout=p)
    plain = NASRecNet(architecture, 4, 3, embedding_dim=4)
    plain.load_state_dict(dropped.state_dict())
    return dropped, plain


def test_eval_mode_is_the_net_without_dropout() -> None:
    dropped, plain = _pair(0.5)
    dense, sparse = torch.randn(8, 4), torch.randn(8, 3, 4)
    torch.testing.assert_close(dropped.eval()(dense, sparse), plain.eval()(dense, sparse))
    assert not torch.allclose(dropped.train()(dense, sparse), plain.train()(dense, sparse))


def test_training_mode_drops_each_block_dense_output_in_block_order() -> None:
    """The same as the plain net with dropout(p) on each live block's dense output only,
    drawn in block order (what every later block, and the head, then reads)."""
    p = 0.3
    dropped, plain = _pair(p)
    dense, sparse = torch.randn(16, 4), torch.randn(16, 3, 4)
    seen: list[int] = []

    def drop_dense(module, inputs, output):
        seen.append(id(module))
        dense_out, sparse_out = output
        return (None if dense_out is None else
                torch.nn.functional.dropout(dense_out, p, True)), sparse_out

    for block in plain.blocks.values():
        block.register_forward_hook(drop_dense)
    torch.manual_seed(11)
    expected = plain.train()(dense, sparse)
    torch.manual_seed(11)
    torch.testing.assert_close(dropped.train()(dense, sparse), expected)
    assert len(seen) == len(plain.blocks) > 1


def test_dropout_out_of_range_is_refused() -> None:
    architecture = sample_any_op_any_conn(get_space("nasrec-small"), random.Random(0))
    for p in (-0.1, 1.0):
        with pytest.raises(NASRecError, match="dropout"):
            NASRecNet(architecture, 4, 3, embedding_dim=4, dropout=p)
