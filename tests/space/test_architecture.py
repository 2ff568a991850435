"""Architecture as a value: JSON round-trips, liveness, and canonical() twins."""

from __future__ import annotations

import random
import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import SPACES, STRATEGIES, Architecture, Block


def block(sources=(0,), sparse=(0,), left=0, right=0, dense_ops=("fc",), sparse_ops=("embed_fc",),
          dense_dim=32, sparse_dim=16, pc=False, fm=False) -> Block:
    return Block(dense_sources=sources, sparse_sources=sparse, dense_left=left, dense_right=right,
                 dense_ops=dense_ops, sparse_ops=sparse_ops, dense_dim=dense_dim,
                 sparse_dim=sparse_dim, project_concat=pc, fm=fm)


def arch(*blocks: Block, rows: int = 1) -> Architecture:
    return Architecture(blocks=blocks, project_concat_rows=rows)


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_json_round_trip_of_sampled_architectures(space_name, strategy):
    rng = random.Random(7)
    for _ in range(25):
        architecture = STRATEGIES[strategy](SPACES[space_name], rng)
        again = Architecture.from_json(architecture.to_json())
        assert again == architecture and hash(again) == hash(architecture)


def test_block_normalises_order_and_duplicates():
    assert block(sources=(2, 0, 2), dense_ops=("dot_product", "fc")) == block(
        sources=(0, 2), dense_ops=("fc", "dot_product"))


def test_from_json_reports_block_and_field():
    data = arch(block(), block()).to_dict()
    data["blocks"][1]["dense_dims"] = 32
    with pytest.raises(NASRecError, match=r"block 2: unknown field 'dense_dims'"):
        Architecture.from_dict(data)
    del data["blocks"][1]["dense_dims"]
    del data["blocks"][1]["sparse_dim"]
    with pytest.raises(NASRecError, match=r"block 2: missing field 'sparse_dim'"):
        Architecture.from_dict(data)
    with pytest.raises(NASRecError, match=r"line 1: invalid JSON"):
        Architecture.from_json("{")


def test_liveness_follows_reads_backwards():
    # Block 3 reads the dense output of block 1 only; block 2 is dead.
    architecture = arch(block(), block(sources=(0, 1)), block(sources=(1,), sparse=(0,)))
    live = architecture.liveness()
    assert live.dense == (True, False, True)
    assert not live.block_live(2)
    # Only the last block's sparse output is read (by the final FC); no FM anywhere.
    assert live.sparse_branch == (False, False, True)
    assert live.sparse_output == (False, False, True)


def canon_equal(a: Architecture, b: Architecture) -> bool:
    equal = a.canonical() == b.canonical()
    if equal:
        assert hash(a.canonical()) == hash(b.canonical())
    return equal


def test_left_right_do_not_matter_without_gating_or_sum():
    one = arch(block(), block(sources=(0, 1), left=0, right=1))
    two = arch(block(), block(sources=(0, 1), left=1, right=1))
    assert one != two and canon_equal(one, two)


def test_left_right_matter_with_gating():
    one = arch(block(), block(dense_ops=("gating",), left=0, right=1))
    two = arch(block(), block(dense_ops=("gating",), left=1, right=1))
    assert not canon_equal(one, two)


def test_dead_blocks_may_differ():
    one = arch(block(), block(dense_dim=64), block(sources=(1,)))
    two = arch(block(), block(dense_dim=512, dense_ops=("dot_product",), pc=True), block(sources=(1,)))
    assert canon_equal(one, two)


def test_project_concat_on_a_block_whose_sparse_output_is_unread():
    one = arch(block(), block(pc=True), block(sources=(2,), sparse=(0,)))
    two = arch(block(), block(pc=False), block(sources=(2,), sparse=(0,)))
    assert canon_equal(one, two)


def test_project_concat_on_a_block_whose_sparse_output_is_read():
    reader = block(sources=(2,), sparse=(2,), dense_ops=("dot_product",))
    one = arch(block(), block(pc=True), reader)
    two = arch(block(), block(pc=False), reader)
    assert not canon_equal(one, two)


def test_sparse_branch_unread_its_ops_and_dim_do_not_matter():
    # Block 2 (the last) reads block 1's dense output only; the final FC reads block 2's outputs.
    one = arch(block(sparse_ops=("embed_fc",), sparse_dim=16), block(sources=(1,), sparse=(0,)))
    two = arch(block(sparse_ops=("attention",), sparse_dim=64), block(sources=(1,), sparse=(0,)))
    assert canon_equal(one, two)


def test_last_block_sparse_output_is_read_by_the_final_fc():
    one = arch(block(), block(sources=(1,), sparse_dim=16))
    two = arch(block(), block(sources=(1,), sparse_dim=64))
    assert not canon_equal(one, two)


def test_fm_makes_the_sparse_branch_live():
    last = block(sources=(2,), sparse=(0,))
    one = arch(block(), block(sources=(1,), sparse_dim=16, fm=True), last)
    two = arch(block(), block(sources=(1,), sparse_dim=64, fm=True), last)
    assert not canon_equal(one, two)
    without_fm = [arch(block(), block(sources=(1,), sparse_dim=dim), last) for dim in (16, 64)]
    assert canon_equal(*without_fm)


def test_live_gene_differences_are_kept():
    base = arch(block(), block(sources=(0, 1)))
    for changed in (
        arch(block(dense_dim=64), block(sources=(0, 1))),
        arch(block(), block(sources=(1,))),
        arch(block(), block(sources=(0, 1), dense_ops=("fc", "dot_product"))),
        arch(block(), block(sources=(0, 1), dense_dim=64)),
    ):
        assert not canon_equal(base, changed)


def test_canonical_is_idempotent_and_keeps_liveness():
    rng = random.Random(0)
    for space in SPACES.values():
        for _ in range(50):
            architecture = STRATEGIES["any_op_any_conn"](space, rng)
            canonical = architecture.canonical()
            assert canonical.canonical() == canonical
            assert canonical.liveness() == architecture.liveness()
