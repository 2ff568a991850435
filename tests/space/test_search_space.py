"""SearchSpace: presets, files, exact size, and the no-torch rule of the space package."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from itertools import chain, combinations, product
from pathlib import Path

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import DENSE_OPS, SPACES, SPARSE_OPS, Architecture, Block, SearchSpace, get_space

SPECS = Path(__file__).resolve().parents[2] / "specs" / "spaces"


def test_space_package_never_imports_torch():
    code = ("import sys, nasrec_torchrec.space, nasrec_torchrec.space.official, "
            "nasrec_torchrec.space.mutation; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_presets_hold_the_paper_and_official_choices():
    small, full = get_space("nasrec-small"), get_space("nasrec-full")
    assert small.dense_ops == ("fc", "dot_product") and small.sparse_ops == ("embed_fc",)
    # spelled out: an operator added to the table later must join no preset
    assert full.dense_ops == ("fc", "gating", "sum", "dot_product")
    assert full.sparse_ops == ("embed_fc", "attention")
    for space in (small, full):
        assert space.num_blocks == 7
        assert space.dense_dims == (32, 64, 128, 256, 512) and space.sparse_dims == (16, 32, 64)
        assert space.project_concat_searchable and space.project_concat_rows == 1
        assert not space.fm_searchable and space.max_connections is None
    official_small, official_full = get_space("official-small"), get_space("official-full")
    assert official_small.dense_ops == small.dense_ops and official_full.dense_ops == full.dense_ops
    for space in (official_small, official_full):
        assert space.dense_dims == (16, 32, 64, 128, 256, 512, 768, 1024)
        assert space.sparse_dims == (16, 32, 48, 64)
        assert space.fm_searchable and space.project_concat_rows == 8 and space.max_connections == 4


def test_plus_presets_are_the_paper_spaces_with_fm_cross_and_flat_fc():
    for paper in ("nasrec-small", "nasrec-full"):
        base, plus = get_space(paper), get_space(f"{paper}-plus")
        assert plus.dense_ops == base.dense_ops + ("fm", "cross", "flat_fc")
        assert plus.sparse_ops == base.sparse_ops
        assert replace(plus, name=paper, dense_ops=base.dense_ops) == base
    # 5 dense operators instead of 2 per block: 31 non-empty subsets instead of 3
    assert get_space("nasrec-small-plus").size() * 3 ** 7 == \
        get_space("nasrec-small").size() * 31 ** 7
    assert get_space("nasrec-full-plus").size(single_operator=True) * 4 ** 7 == (
        get_space("nasrec-full").size(single_operator=True) * 7 ** 7)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(NASRecError, match="nasrec-small"):
        get_space("nasrec-medium")


@pytest.mark.parametrize("name", sorted(SPACES))
def test_spec_files_agree_with_presets(name):
    assert SearchSpace.from_file(SPECS / f"{name}.yaml") == get_space(name)


def test_json_file_round_trips(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(get_space("official-full").to_dict()))
    assert SearchSpace.from_file(path) == get_space("official-full")


def test_unknown_key_in_file_names_file_and_field(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("name: x\nnum_blocks: 2\ndense_ops: [fc]\nsparse_ops: [embed_fc]\n"
                    "dense_dims: [8]\nsparse_dims: [4]\nmax_conections: 2\n")
    with pytest.raises(NASRecError, match=r"space\.yaml: field 'max_conections': unknown"):
        SearchSpace.from_file(path)


@pytest.mark.parametrize("field, value, expected", [
    ("dense_ops", ["fc", "conv"], "'conv' is not one of"),
    ("sparse_ops", [], "non-empty list"),
    ("dense_dims", [32, 0], "not an integer >= 1"),
    ("sparse_dims", [16, 16], "twice"),
    ("num_blocks", 0, "not an integer >= 1"),
    ("max_connections", "4", "not an integer >= 1"),
    ("fm_searchable", "yes", "not true or false"),
    ("project_concat_rows", 0, "not an integer >= 1"),
])
def test_bad_value_in_file_names_file_and_field(tmp_path, field, value, expected):
    data = get_space("nasrec-small").to_dict()
    data[field] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(NASRecError, match=rf"bad\.json: field '{field}': .*{expected}"):
        SearchSpace.from_file(path)


def test_missing_field_and_bad_syntax_are_reported(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nnum_blocks: 2\n")
    with pytest.raises(NASRecError, match=r"s\.yaml: field 'dense_ops': missing"):
        SearchSpace.from_file(path)
    path.write_text("name: [x\n")
    with pytest.raises(NASRecError, match=r"s\.yaml:\d+: invalid YAML"):
        SearchSpace.from_file(path)
    (tmp_path / "s.toml").write_text("name = 'x'\n")
    with pytest.raises(NASRecError, match="unknown search-space file type"):
        SearchSpace.from_file(tmp_path / "s.toml")


def _subsets(items):
    items = list(items)
    return chain.from_iterable(combinations(items, k) for k in range(len(items) + 1))


def test_size_matches_brute_force_count_of_valid_genotypes():
    """Count, per block, the genes `validate` accepts among a superset of candidates."""
    space = SearchSpace(name="tiny", num_blocks=4, dense_ops=("fc", "sum"), sparse_ops=SPARSE_OPS,
                        dense_dims=(8, 16), sparse_dims=(4,), project_concat_searchable=False,
                        project_concat_rows=2, fm_searchable=True, max_connections=2)
    base = Block(dense_sources=(0,), sparse_sources=(0,), dense_left=0, dense_right=0,
                 dense_ops=("fc",), sparse_ops=("embed_fc",), dense_dim=8, sparse_dim=4)
    total = single = 1
    for b in range(1, space.num_blocks + 1):
        def valid(**genes):
            blocks = [base] * space.num_blocks
            blocks[b - 1] = Block(**{**base.__dict__, **genes})
            try:
                Architecture(tuple(blocks), project_concat_rows=2).validate(space)
            except NASRecError:
                return False
            return True

        wiring = sum(valid(dense_sources=d, sparse_sources=s, dense_left=left, dense_right=right)
                     for d, s in product(_subsets(range(b + 1)), repeat=2)
                     for left, right in product(range(b + 1), repeat=2))
        dense_op_sets = [ops for ops in _subsets(DENSE_OPS) if valid(dense_ops=ops)]
        sparse_op_sets = [ops for ops in _subsets(SPARSE_OPS) if valid(sparse_ops=ops)]
        rest = sum(valid(dense_dim=d, sparse_dim=s, project_concat=pc, fm=fm)
                   for d, s, pc, fm in product((8, 16, 32), (4, 8), (False, True), (False, True)))
        total *= wiring * len(dense_op_sets) * len(sparse_op_sets) * rest
        single *= (wiring * sum(len(ops) == 1 for ops in dense_op_sets)
                   * sum(len(ops) == 1 for ops in sparse_op_sets) * rest)
    assert space.size() == total
    assert space.size(single_operator=True) == single


def test_preset_sizes():
    # Per block b: (source subsets)² · b² · op subsets · dims · PC · FM.
    assert get_space("nasrec-small").size() == 7416374893580094601705358400000000000
    assert get_space("nasrec-full").size() == get_space("nasrec-small").size() * 15 ** 7
    assert get_space("official-full").size(single_operator=True) == (
        get_space("official-small").size(single_operator=True) * 8 ** 7 // 2 ** 7)
    for space in SPACES.values():
        assert space.size(single_operator=True) < space.size()
