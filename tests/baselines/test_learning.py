"""Every baseline learns the planted synthetic signal better than logistic regression.

One synthetic KDD-shaped dataset (12 sparse and 3 dense features; interactions planted
between the lowest-cardinality features and between dense and sparse features), one epoch
of the real trainer (`nasrec train --model NAME`) per model, small bodies; compared on
validation log loss (the runs are seeded: the same figures on every run).

The KDD shape, not the Criteo one: with Criteo's 26 sparse fields, capped at 64 rows, one
epoch of 160k rows is not enough for DeepFM and AutoInt+ (their FM and attention pair every
field with 25 mostly-noise fields) to beat logistic regression, while DLRM, xDeepFM and
DCNv2 do.
"""

from __future__ import annotations

import argparse
import json

import pytest

from nasrec_torchrec.commands import train

SMALL_OPTIONS = {
    "dlrm": ["bottom_layer_sizes=32", "top_layer_sizes=32"],
    "deepfm": ["layer_sizes=32-32", "dropout=0"],
    "autoint": ["num_layers=1", "attention_dim=8", "layer_sizes=32"],
    "xdeepfm": ["cin_layer_sizes=8", "layer_sizes=32"],
    "dcnv2": ["num_cross_layers=2", "low_rank=16", "layer_sizes=32"],
}
COMMON = ["--batch-size", "512", "--epochs", "1", "--embedding-cap", "64",
          "--embedding-dim", "8", "--no-progress", "--threads", "1", "--device", "cpu",
          "--checkpoint-every", "0", "--log-every", "1000", "--eval-batch-size", "8192"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> str:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("planted") / "kdd")
    write_synthetic("kdd", 200_000, output, seed=0, row_group_rows=50_000)
    return output


def _validation_log_loss(data: str, model: str, options: list[str], output: str) -> float:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    argv = ["--data", data, "--model", model, "--output", output, *COMMON]
    for option in options:
        argv += ["--model-option", option]
    assert train.run(parser.parse_args(argv)) == 0
    with open(f"{output}/results.json") as handle:
        results = json.load(handle)
    with open(f"{output}/config.json") as handle:
        assert json.load(handle)["config"]["model"]["baseline_options"] == options
    return results["val"]["log_loss"]


def test_every_baseline_beats_logistic_regression_on_the_planted_signal(planted, tmp_path):
    linear = _validation_log_loss(planted, "linear", [], str(tmp_path / "linear"))
    losses = {name: _validation_log_loss(planted, name, options, str(tmp_path / name))
              for name, options in SMALL_OPTIONS.items()}
    print({"linear": linear, **losses})
    worse = {name: loss for name, loss in losses.items() if not loss < linear}
    assert not worse, f"not better than linear ({linear:.4f}): {worse}"
