"""Import and export of the official release's architecture JSON."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import (
    STRATEGIES,
    from_official,
    get_space,
    load_official,
    sample_architecture,
    to_official,
)

OFFICIAL_CONFIGS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "official_configs"
CONFIG_FILES = sorted(OFFICIAL_CONFIGS.glob("*.json")) if OFFICIAL_CONFIGS.is_dir() else []
needs_configs = pytest.mark.skipif(not CONFIG_FILES, reason=f"no official configs in {OFFICIAL_CONFIGS}")


def small_official() -> dict:
    return {
        "macro": [
            {"dense_idx": [0], "sparse_idx": [0], "dense_left_idx": [0], "dense_right_idx": [0]},
            {"dense_idx": [1, 0], "sparse_idx": [1], "dense_left_idx": [1], "dense_right_idx": [0]},
        ],
        "micro": [
            {"active_nodes": [2, 4], "dense_in_dims": 64, "sparse_in_dims": 16,
             "dense_sparse_interact": 1, "deep_fm": 0},
            {"active_nodes": [1, 5], "dense_in_dims": 1024, "sparse_in_dims": 48,
             "dense_sparse_interact": 0, "deep_fm": 1},
        ],
        "num_blocks": 2, "use_layernorm": 1, "config": "xlarge",
    }


def test_import_maps_nodes_dims_and_flags():
    architecture, space_name = from_official(small_official())
    assert space_name == "official-full" and architecture.project_concat_rows == 8
    first, second = architecture.blocks
    assert first.dense_ops == ("gating",) and first.sparse_ops == ("attention",)
    assert (first.dense_dim, first.sparse_dim, first.project_concat, first.fm) == (64, 16, True, False)
    assert second.dense_sources == (0, 1)  # the official order carries no meaning; ours is sorted
    assert (second.dense_left, second.dense_right) == (1, 0)
    assert second.dense_ops == ("dot_product",) and second.sparse_ops == ("embed_fc",)
    assert (second.dense_dim, second.sparse_dim, second.project_concat, second.fm) == (1024, 48, False, True)


def test_autoctr_nodes_map_to_official_small():
    data = small_official()
    data["config"] = "autoctr"
    data["micro"][0]["active_nodes"] = [0, 2]
    data["micro"][1]["active_nodes"] = [1, 2]
    architecture, space_name = from_official(data)
    assert space_name == "official-small"
    assert [b.dense_ops + b.sparse_ops for b in architecture.blocks] == [
        ("fc", "embed_fc"), ("dot_product", "embed_fc")]


@pytest.mark.parametrize("config, space_name", [("xlarge", "official-full"), ("autoctr", "official-small")])
def test_sampled_architectures_round_trip(config, space_name):
    space, rng = get_space(space_name), random.Random(0)
    for strategy in ("single_op_any_conn", "any_op_any_conn", "full"):
        for _ in range(30):
            architecture = STRATEGIES[strategy](space, rng)
            data = json.loads(json.dumps(to_official(architecture, config)))
            assert from_official(data) == (architecture, space_name)


@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d["micro"][1].update(active_nodes=[1, 9]), "active_nodes", "node 9 is not one of 0..5"),
    (lambda d: d["macro"][1].update(dense_left_idx=[0, 1]), "dense_left_idx", "exactly one"),
    (lambda d: d["macro"][1].pop("sparse_idx"), "sparse_idx", "missing"),
    (lambda d: d["macro"][1].update(dense_idx="01"), "dense_idx", "not a list"),
    (lambda d: d["micro"][1].update(deep_fm=2), "deep_fm", "not 0 or 1"),
    (lambda d: d["micro"][1].update(extra=1), "extra", "unknown field"),
])
def test_import_errors_name_block_and_field(mutate, field, message):
    data = copy.deepcopy(small_official())
    mutate(data)
    with pytest.raises(NASRecError, match=rf"block 2: field '{field}': .*{message}"):
        from_official(data)


def test_import_errors_at_the_top_level():
    data = small_official()
    data["config"] = "large"
    with pytest.raises(NASRecError, match="field 'config': 'large' is not one of"):
        from_official(data)
    data = small_official()
    data["num_blocks"] = 7
    with pytest.raises(NASRecError, match="field 'num_blocks': 7 != 2 blocks"):
        from_official(data)


def test_export_refuses_what_the_format_cannot_hold():
    architecture = sample_architecture(get_space("official-small"), random.Random(0))
    blocks = list(architecture.blocks)
    blocks[2] = replace(blocks[2], dense_ops=("gating",))
    with_gating = replace(architecture, blocks=tuple(blocks))
    to_official(with_gating, "xlarge")
    with pytest.raises(NASRecError, match=r"block 3: field 'dense_ops': 'gating' has no node in config 'autoctr'"):
        to_official(with_gating, "autoctr")
    paper = sample_architecture(get_space("nasrec-small"), random.Random(0))
    with pytest.raises(NASRecError, match="field 'project_concat_rows': 1 rows"):
        to_official(paper, "autoctr")


@needs_configs
@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_official_configs_import_and_validate(path):
    architecture, space_name = load_official(path)
    architecture.validate(get_space(space_name))
    assert space_name == {"xlarge": "official-full", "autoctr": "official-small"}[
        json.loads(path.read_text())["config"]]


@needs_configs
@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_official_configs_export_back_with_sorted_indices(path):
    original = json.loads(path.read_text())
    architecture, _ = from_official(original)
    exported = to_official(architecture, original["config"], use_layernorm=bool(original["use_layernorm"]))
    for block in original["macro"]:
        assert all(len(set(v)) == len(v) for v in block.values())  # no duplicate indices
        for key, value in block.items():
            block[key] = sorted(value)  # several files list sources out of order
    assert exported == {k: v for k, v in original.items() if k != "test_loss"}


def test_load_official_reports_the_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text("{\"macro\": [")
    with pytest.raises(NASRecError, match=r"arch\.json:1: invalid JSON"):
        load_official(path)
