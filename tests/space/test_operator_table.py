"""The operator table: what each operator reads drives liveness and canonical(); names are
checked, never guessed (torch-free)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import (DENSE_OPS, OPERATORS, SPARSE_OPS, Architecture, Block,
                                   OperatorSpec, SearchSpace, get_space, operator_spec,
                                   sample_any_op_any_conn)
from nasrec_torchrec.space.operators import DENSE_CONCAT, DENSE_PAIR, SPARSE, SPARSE_CONCAT


def block(sources=(0,), sparse=(0,), left=0, right=0, dense_ops=("fc",),
          sparse_ops=("embed_fc",), dense_dim=32, sparse_dim=16) -> Block:
    return Block(dense_sources=sources, sparse_sources=sparse, dense_left=left, dense_right=right,
                 dense_ops=dense_ops, sparse_ops=sparse_ops, dense_dim=dense_dim,
                 sparse_dim=sparse_dim)


PAPER_READS = {"fc": {DENSE_CONCAT}, "gating": {DENSE_PAIR}, "sum": {DENSE_PAIR},
               "dot_product": {DENSE_CONCAT, SPARSE_CONCAT}, "embed_fc": {SPARSE_CONCAT},
               "attention": {SPARSE_CONCAT}}


def test_table_order_is_the_canonical_operator_order():
    # The paper's operators keep their relative order whatever is added, so the blocks of
    # existing architectures keep their order, JSON and hash.
    assert tuple(op for op in DENSE_OPS if op in PAPER_READS) == (
        "fc", "gating", "sum", "dot_product")
    assert tuple(op for op in SPARSE_OPS if op in PAPER_READS) == ("embed_fc", "attention")
    assert set(OPERATORS) == set(DENSE_OPS + SPARSE_OPS)
    assert all(OPERATORS[name].branch == "dense" for name in DENSE_OPS)


def test_each_paper_operator_reads_the_inputs_the_docs_give_it():
    assert {name: OPERATORS[name].inputs for name in PAPER_READS} == PAPER_READS
    assert block(dense_ops=("fc", "gating")).inputs_read(sparse=False) == {DENSE_CONCAT,
                                                                           DENSE_PAIR}
    assert block().inputs_read(dense=False) == {SPARSE_CONCAT}


def test_an_unknown_operator_name_is_an_error_naming_it():
    with pytest.raises(NASRecError, match=r"unknown operator 'conv'"):
        operator_spec("conv")
    with pytest.raises(NASRecError, match=r"unknown operator 'conv'"):
        Architecture(blocks=(block(dense_ops=("conv",)),)).liveness()
    small = get_space("nasrec-small")
    architecture = sample_any_op_any_conn(small, random.Random(0))
    blocks = list(architecture.blocks)
    blocks[2] = Block(**{**blocks[2].__dict__, "dense_ops": ("conv",)})
    with pytest.raises(NASRecError,
                       match=r"block 3: field 'dense_ops': 'conv' is not one of .* operator"):
        Architecture(tuple(blocks)).validate(small)
    with pytest.raises(NASRecError, match=r"field 'sparse_ops': 'conv' is not one of"):
        SearchSpace(name="s", num_blocks=1, dense_ops=("fc",), sparse_ops=("conv",),
                    dense_dims=(8,), sparse_dims=(4,))


def test_an_operator_of_the_other_branch_is_refused():
    with pytest.raises(NASRecError, match=r"field 'dense_ops': 'embed_fc' is not one of"):
        SearchSpace(name="s", num_blocks=1, dense_ops=("embed_fc",), sparse_ops=("embed_fc",),
                    dense_dims=(8,), sparse_dims=(4,))


@pytest.fixture
def dense_rows(monkeypatch):
    """A new table entry: a sparse operator that reads the dense concat."""
    spec = OperatorSpec("dense_rows", SPARSE, frozenset({DENSE_CONCAT}))
    monkeypatch.setitem(OPERATORS, spec.name, spec)
    return spec


def test_a_new_table_entry_joins_spaces_liveness_and_canonical_without_other_changes(dense_rows):
    space = SearchSpace(name="s", num_blocks=2, dense_ops=("fc",),
                        sparse_ops=("dense_rows", "embed_fc"), dense_dims=(32,), sparse_dims=(16,))
    assert space.sparse_ops == ("embed_fc", "dense_rows")  # table order
    # Block 2 reads only block 1's sparse output; block 1's sparse branch is dense_rows,
    # so block 1's dense sources (and nothing sparse) are live.
    first = block(sources=(0,), sparse=(0,), sparse_ops=("dense_rows",))
    last = block(sources=(0,), sparse=(1,))
    architecture = Architecture(blocks=(first, last))
    architecture.validate(space)
    live = architecture.liveness()
    assert live.sparse_branch == (True, True) and live.dense == (False, True)
    canonical = architecture.canonical().block(1)
    assert canonical.dense_sources == (0,) and canonical.sparse_sources == ()
    assert canonical.dense_ops == () and canonical.sparse_ops == ("dense_rows",)



def test_fm_reads_the_sparse_concat_and_cross_the_dense_concat():
    assert OPERATORS["fm"].inputs == {SPARSE_CONCAT} and OPERATORS["fm"].branch == "dense"
    assert OPERATORS["cross"].inputs == {DENSE_CONCAT} and OPERATORS["cross"].branch == "dense"
    # Block 3 runs FM only: it reads block 2's sparse output, not block 1's dense output.
    first = block(sources=(0,), sparse=(0,))
    second = block(sources=(0,), sparse=(0, 1))
    last = block(sources=(1,), sparse=(2,), dense_ops=("fm",))
    architecture = Architecture(blocks=(first, second, last))
    architecture.validate(replace(get_space("nasrec-small-plus"), num_blocks=3))
    live = architecture.liveness()
    assert live.dense == (False, False, True)
    assert live.sparse_output == (True, True, True)
    assert architecture.canonical().block(3).dense_sources == ()
    # Cross alone: the dense sources are read, a sparse source only by the sparse branch.
    crossed = Architecture(blocks=(first, second, block(sources=(1,), sparse=(2,),
                                                          dense_ops=("cross",))))
    assert crossed.liveness().dense == (True, False, True)
