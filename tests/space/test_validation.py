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


# --- an architecture file: checked against what any space admits, before a model is built


def _file_with(tmp_path, valid, number=None, **genes):
    import json

    data = valid.to_dict()
    if number is None:
        data.update(genes)
    else:
        data["blocks"][number - 1].update(genes)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("number, genes, message", [
    (1, {"dense_ops": ["warp"]}, r"block 1: field 'dense_ops': 'warp' is not one of .*no such"),
    (1, {"dense_ops": ["embed_fc"]}, r"block 1: field 'dense_ops': 'embed_fc' is not one of"),
    (2, {"dense_sources": [0, 9]}, r"block 2: field 'dense_sources': 9 is not one of \[0, 1\]"),
    (2, {"sparse_sources": [2]}, r"block 2: field 'sparse_sources': 2 is not one of .*earlier"),
    (3, {"dense_left": -1}, r"block 3: field 'dense_left': -1 is not one of"),
    (1, {"dense_dim": -4}, r"block 1: field 'dense_dim': -4 is not a positive integer"),
    (1, {"sparse_dim": 0}, r"block 1: field 'sparse_dim': 0 is not a positive integer"),
    (1, {"dense_dim": 2.5}, r"block 1: field 'dense_dim': 2.5 is not an integer"),
    (1, {"sparse_dim": "16"}, r"block 1: field 'sparse_dim': '16' is not an integer"),
    (1, {"fm": "yes"}, r"block 1: field 'fm': 'yes' is not true or false"),
    (1, {"dense_ops": "fc"}, r"block 1: field 'dense_ops': 'fc' is not a list of operator"),
    (1, {"sparse_sources": [[0]]}, r"block 1: field 'sparse_sources': \[\[0\]\] is not a list"),
    (None, {"blocks": []}, r"field 'blocks': no block"),
    (None, {"project_concat_rows": -1}, r"field 'project_concat_rows': -1 is not a positive"),
    (None, {"project_concat_rows": "8"}, r"field 'project_concat_rows': '8' is not an integer"),
])
def test_architecture_files_are_checked_naming_block_and_field(tmp_path, valid, number, genes,
                                                               message):
    from nasrec_torchrec.space import load_architecture

    path = _file_with(tmp_path, valid, number, **genes)
    with pytest.raises(NASRecError, match=rf"arch\.json: {message}"):
        load_architecture(path)


def test_architecture_files_of_any_space_load(tmp_path):
    from nasrec_torchrec.space import SPACES, load_architecture, to_official

    for name, space in SPACES.items():
        architecture = sample_architecture(space, random.Random(1))
        path = tmp_path / f"{name}.json"
        path.write_text(architecture.to_json())
        assert load_architecture(str(path)) == architecture
    official = sample_architecture(get_space("official-small"), random.Random(2))
    path = tmp_path / "official.json"
    import json

    data = to_official(official, "autoctr")
    path.write_text(json.dumps(data))
    assert load_architecture(str(path)) == official
    data["micro"][0]["dense_in_dims"] = 20  # not a size of the official space
    path.write_text(json.dumps(data))
    with pytest.raises(NASRecError, match=r"official\.json: block 1: field 'dense_dim': 20 is "
                       r"not one of"):
        load_architecture(str(path))
