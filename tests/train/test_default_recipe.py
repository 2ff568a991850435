"""The default recipe is stable on a published-style architecture without LayerNorm (issue 14).

Adagrad's first step moves every weight by about the rate whatever its gradient; without
LayerNorm, wide layers feeding Dot-Product and FM operators (products of their inputs) turn
that into an exploding loss. The default warm-up over the first steps keeps those steps small;
the paper's recipe (no warm-up, no clipping) diverges on the same run.
"""

from __future__ import annotations

import json
import statistics

import pytest

from nasrec_torchrec.artifacts import METRICS_FILE, read_jsonl
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.stages.model import ModelRun, train_model
from nasrec_torchrec.train.config import TrainConfig

STEPS = 25


def _block(nodes: list[int], dense_dim: int, sparse_dim: int, interact: int, fm: int) -> dict:
    return {"active_nodes": nodes, "dense_in_dims": dense_dim, "sparse_in_dims": sparse_dim,
            "dense_sparse_interact": interact, "deep_fm": fm}


def _wiring(dense: list[int], sparse: list[int], left: int, right: int) -> dict:
    return {"dense_idx": dense, "sparse_idx": sparse, "dense_left_idx": [left],
            "dense_right_idx": [right]}


# The official release's JSON format (NASRec-Small nodes: 0 FC, 1 Dot-Product, 2 EmbedFC):
# seven blocks as wide as the published ones, FM and Dot-Product chained.
ARCHITECTURE = {
    "config": "autoctr", "num_blocks": 7, "use_layernorm": 0,
    "micro": [_block([0, 2], 512, 48, 1, 1), _block([1, 2], 1024, 32, 1, 1),
              _block([0, 2], 256, 16, 0, 1), _block([1, 2], 128, 32, 0, 0),
              _block([0, 2], 768, 48, 1, 1), _block([1, 2], 512, 16, 0, 0),
              _block([0, 2], 1024, 64, 0, 0)],
    "macro": [_wiring([0], [0], 0, 0), _wiring([1], [0, 1], 1, 0), _wiring([2, 0], [2, 1], 2, 0),
              _wiring([3, 2], [3, 0], 3, 1), _wiring([4, 1], [4, 2], 4, 2),
              _wiring([5, 3], [5], 5, 3), _wiring([6, 5, 0], [6, 0], 6, 0)],
}


def _step_losses(data: str, tmp_path, **recipe) -> list[float]:
    """Train ARCHITECTURE without LayerNorm for STEPS steps at the default batch size."""
    arch = tmp_path / "published_style.json"
    arch.write_text(json.dumps(ARCHITECTURE))
    config = TrainConfig(data=data, output=str(tmp_path / "run"), epochs=3, max_steps=STEPS,
                         log_every=1, threads=1, eval_split="", checkpoint_every=0,
                         progress_bar=False, **recipe)
    train_model(ModelRun(arch=str(arch), layer_norm=False, train=config))
    return [row["loss"] for row in read_jsonl(str(tmp_path / "run" / METRICS_FILE))]


def test_the_default_recipe_trains_a_published_style_architecture_without_layer_norm(
        synthetic_criteo: str, tmp_path) -> None:
    losses = _step_losses(synthetic_criteo, tmp_path)
    assert len(losses) == STEPS
    assert statistics.fmean(losses) < 1.0
    assert max(losses) < 2 * losses[0]  # no spike


def test_the_papers_recipe_diverges_on_it(synthetic_criteo: str, tmp_path) -> None:
    with pytest.raises(NASRecError, match="training diverged at step"):
        _step_losses(synthetic_criteo, tmp_path, lr_warmup_steps=0, clip_grad_norm=0.0)
