"""Architecture.validate: every fault names the block and field at fault."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import Architecture, get_space, sample_architecture


@pytest.fixture
def small():
    return get_space("nasrec-small")


@pytest.fixture
def valid(small):
    return sample_architecture(small, random.Random(3))


def with_block(architecture: Architecture, number: int, **genes) -> Architecture:
    blocks = list(architecture.blocks)
    blocks[number - 1] = replace(blocks[number - 1], **genes)
    return replace(architecture, blocks=tuple(blocks))


def test_a_sampled_architecture_validates(small, valid):
    valid.validate(small)


def test_wrong_block_count(small, valid):
    with pytest.raises(NASRecError, match=r"field 'blocks': 6 blocks, space 'nasrec-small' has 7"):
        replace(valid, blocks=valid.blocks[:6]).validate(small)


def test_source_out_of_range(small, valid):
    with pytest.raises(NASRecError, match=r"block 3: field 'dense_sources': 3 is not one of \[0, 1, 2\]"):
        with_block(valid, 3, dense_sources=(0, 3)).validate(small)


def test_negative_sparse_source(small, valid):
    with pytest.raises(NASRecError, match=r"block 2: field 'sparse_sources': -1 is not one of \[0, 1\]"):
        with_block(valid, 2, sparse_sources=(-1,)).validate(small)


def test_empty_sources(small, valid):
    with pytest.raises(NASRecError, match=r"block 4: field 'sparse_sources': no source"):
        with_block(valid, 4, sparse_sources=()).validate(small)


def test_too_many_connections(valid):
    official = get_space("official-small")
    architecture = sample_architecture(official, random.Random(0))
    with pytest.raises(NASRecError, match=r"block 6: field 'dense_sources': 5 sources, at most 4"):
        with_block(architecture, 6, dense_sources=(0, 1, 2, 3, 4)).validate(official)


@pytest.mark.parametrize("field", ["dense_left", "dense_right"])
def test_left_right_out_of_range(small, valid, field):
    with pytest.raises(NASRecError, match=rf"block 5: field '{field}': 5 is not one of \[0, 1, 2, 3, 4\]"):
        with_block(valid, 5, **{field: 5}).validate(small)


def test_empty_ops(small, valid):
    with pytest.raises(NASRecError, match=r"block 1: field 'dense_ops': no operator"):
        with_block(valid, 1, dense_ops=()).validate(small)


def test_op_not_in_space(small, valid):
    with pytest.raises(NASRecError, match=r"block 2: field 'dense_ops': 'gating' is not one of \['fc', 'dot_product'\]"):
        with_block(valid, 2, dense_ops=("fc", "gating")).validate(small)


def test_unknown_op_name(small, valid):
    with pytest.raises(NASRecError, match=r"block 7: field 'sparse_ops': 'conv' is not one of"):
        with_block(valid, 7, sparse_ops=("conv",)).validate(small)


@pytest.mark.parametrize("field, value", [("dense_dim", 48), ("sparse_dim", 48), ("dense_dim", "64")])
def test_dim_not_in_space(small, valid, field, value):
    with pytest.raises(NASRecError, match=rf"block 3: field '{field}': {value!r} is not one of"):
        with_block(valid, 3, **{field: value}).validate(small)


def test_project_concat_when_not_searchable(valid):
    space = replace(get_space("nasrec-small"), name="no-pc", project_concat_searchable=False)
    architecture = replace(valid, blocks=tuple(replace(b, project_concat=False) for b in valid.blocks))
    architecture.validate(space)
    with pytest.raises(NASRecError, match=r"block 4: field 'project_concat': on, but space 'no-pc'"):
        with_block(architecture, 4, project_concat=True).validate(space)


def test_project_concat_rows_must_match_space(small, valid):
    with pytest.raises(NASRecError, match=r"field 'project_concat_rows': 8 != 1"):
        replace(valid, project_concat_rows=8).validate(small)


def test_fm_when_not_searchable(small, valid):
    with pytest.raises(NASRecError, match=r"block 6: field 'fm': on, but space 'nasrec-small'"):
        with_block(valid, 6, fm=True).validate(small)


def test_flag_must_be_boolean(small, valid):
    with pytest.raises(NASRecError, match=r"block 2: field 'project_concat': 1 is not true or false"):
        with_block(valid, 2, project_concat=1).validate(small)
