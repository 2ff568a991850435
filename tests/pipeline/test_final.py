"""`nasrec final` (paper and BARS protocols) and `nasrec evaluate` on the same split."""

from __future__ import annotations

import argparse
import json
import math
import os

import pytest

from nasrec_torchrec.data.loader import ParquetBatchLoader
from nasrec_torchrec.stages.combined import combined_split_view

from pipeline_helpers import run_command

pytestmark = pytest.mark.usefixtures("one_thread")

ARCH = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "architectures",
                    "simple.json")
FAST = ["--batch-size", "512", "--eval-batch-size", "512", "--no-progress", "--threads", "1",
        "--device", "cpu"]


def test_combined_view_holds_the_rows_of_both_splits_without_copies(tiny_criteo, tmp_path):
    view = combined_split_view(tiny_criteo, ["train", "val"], str(tmp_path / "view"))
    rows = ParquetBatchLoader(view, "train", 100).num_rows
    assert rows == ParquetBatchLoader(tiny_criteo, "train", 100).num_rows + \
        ParquetBatchLoader(tiny_criteo, "val", 100).num_rows
    train_dir = os.path.join(view, "train")
    assert all(os.path.islink(os.path.join(train_dir, name)) for name in os.listdir(train_dir))
    assert ParquetBatchLoader(view, "test", 100).num_rows == 300


def _results(output: str) -> dict:
    with open(os.path.join(output, "results.json")) as handle:
        return json.load(handle)


def test_final_paper_protocol_reports_test_metrics_and_evaluate_agrees(tiny_criteo, tmp_path):
    output = str(tmp_path / "final")
    assert run_command("final", ["--arch", ARCH, "--data", tiny_criteo, "--output", output,
                                 "--max-steps", "3", "--dropout", "0.2", *FAST]) == 0
    results = _results(output)
    assert results["protocol"] == "paper" and results["train_splits"] == ["train", "val"]
    assert results["dropout"] == 0.2
    assert results["embedding_cap"] is None  # full tables
    test = results["metrics"]["test"]
    assert test["rows"] == 300 and 0 < test["log_loss"] < 5 and 0 <= test["auc"] <= 1
    assert results["cost"]["mflops"] > 0 and results["cost"]["params"] > results["cost"]["dense_params"]
    for name in ("architecture.json", "report.md", results["checkpoint"]):
        assert os.path.exists(os.path.join(output, name)), name
    with open(os.path.join(output, "report.md")) as handle:
        report = handle.read()
    assert "| test |" in report and "FLOPs per sample" in report
    assert "| 1 |" in report  # one row per block

    assert run_command("evaluate", ["--model", output, "--data", tiny_criteo,
                                    "--split", "test", "--threads", "1"]) == 0
    with open(os.path.join(output, "evaluation_test.json")) as handle:
        evaluation = json.load(handle)
    assert evaluation["metrics"]["rows"] == test["rows"]
    assert math.isclose(evaluation["metrics"]["log_loss"], test["log_loss"], rel_tol=1e-6)
    assert math.isclose(evaluation["metrics"]["auc"], test["auc"], rel_tol=1e-6)

    # data prepared with other vocabularies is refused before scoring
    from nasrec_torchrec.data.synth import write_synthetic
    from nasrec_torchrec.errors import NASRecError

    other = str(tmp_path / "other")
    write_synthetic("criteo", 600, other, seed=1)
    with pytest.raises(NASRecError, match="--schema-from"):
        run_command("evaluate", ["--model", output, "--data", other, "--split", "test"])

    # a finished run is not retrained with --resume, nor reused with other settings
    stamp = os.path.getmtime(os.path.join(output, "results.json"))
    assert run_command("final", ["--arch", ARCH, "--data", tiny_criteo, "--output", output,
                                 "--max-steps", "3", "--dropout", "0.2", "--resume",
                                 *FAST]) == 0
    assert os.path.getmtime(os.path.join(output, "results.json")) == stamp
    with pytest.raises(NASRecError, match=r"results.json: --resume of a finished run with "
                       r"other settings: model.dropout: 0.2 -> 0.0"):
        run_command("final", ["--arch", ARCH, "--data", tiny_criteo, "--output", output,
                              "--max-steps", "3", "--resume", *FAST])


def test_final_bars_protocol_stops_early_and_keeps_the_best_epoch(tiny_criteo, tmp_path):
    output = str(tmp_path / "bars")
    # a high rate makes the val loss turn up within a few epochs of 4 steps
    assert run_command("final", ["--arch", ARCH, "--data", tiny_criteo, "--output", output,
                                 "--protocol", "bars", "--epochs", "8", "--patience", "1",
                                 "--monitor", "log_loss",
                                 "--lr", "0.3", "--embedding-lr", "0.3", *FAST]) == 0
    results = _results(output)
    assert results["selection"]["metric"] == "val log_loss"
    epochs = results["selection"]["epochs"]
    losses = [record["val"]["log_loss"] for record in epochs]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert results["selection"]["best_epoch"] == epochs[best]["epoch"]
    assert results["metrics"]["val"] == epochs[best]["val"]
    if results["selection"]["stopped_early"]:
        assert len(epochs) == best + 2  # patience 1: one epoch without improvement
    else:
        assert len(epochs) == 8
    assert results["step"] == epochs[best]["step"]
    checkpoints = os.listdir(os.path.join(output, "checkpoints"))
    assert checkpoints == [os.path.basename(results["checkpoint"])]
    assert "test" in results["metrics"]
    evaluation = run_command("evaluate", ["--model", output, "--split", "val"])
    assert evaluation == 0
    with open(os.path.join(output, "evaluation_val.json")) as handle:
        assert math.isclose(json.load(handle)["metrics"]["log_loss"], losses[best],
                            rel_tol=1e-6)


def test_final_bars_monitors_auc_and_cuts_the_rate_on_a_plateau(tiny_criteo, tmp_path):
    output = str(tmp_path / "bars_auc")
    assert run_command("final", ["--arch", ARCH, "--data", tiny_criteo, "--output", output,
                                 "--protocol", "bars", "--epochs", "6", "--patience", "3",
                                 "--monitor", "auc", "--lr-plateau-factor", "0.5",
                                 "--lr-schedule", "constant", "--lr", "0.3",
                                 "--embedding-lr", "0.3", *FAST]) == 0
    results = _results(output)
    epochs = results["selection"]["epochs"]
    aucs = [record["val"]["auc"] for record in epochs]
    best = max(range(len(aucs)), key=lambda i: (aucs[i], -i))
    assert results["selection"]["metric"] == "val auc"
    assert results["selection"]["best_epoch"] == epochs[best]["epoch"]
    assert results["metrics"]["val"] == epochs[best]["val"]
    # every epoch that did not beat the best so far halves the rate of the epochs after it
    rate, best_so_far = 0.3, -1.0
    for record in epochs:
        assert math.isclose(record["lr"], rate, rel_tol=1e-9)
        if record["val"]["auc"] > best_so_far:
            best_so_far = record["val"]["auc"]
        else:
            rate *= 0.5
    assert rate < 0.3  # the run met at least one plateau, else the test checks nothing


def test_final_and_train_share_the_early_stopping_flags_and_defaults():
    from nasrec_torchrec.commands import final, train
    from nasrec_torchrec.stages.final import FinalRun
    from nasrec_torchrec.stages.model import ModelRun
    from nasrec_torchrec.train.options import run_from_args

    settings = {}
    for module, run_cls in ((final, FinalRun), (train, ModelRun)):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        default = run_from_args(run_cls, parser.parse_args(["--arch", ARCH]), True).train
        given = run_from_args(run_cls, parser.parse_args([
            "--arch", ARCH, "--patience", "3", "--monitor", "log_loss",
            "--lr-plateau-factor", "0.1"]), True).train
        settings[module] = [(config.patience, config.monitor, config.lr_plateau_factor)
                            for config in (default, given)]
    assert settings[final] == settings[train] == [(None, "auc", 1.0), (3, "log_loss", 0.1)]


def test_final_bars_needs_a_val_split(tmp_path):
    from nasrec_torchrec.data.synth import write_synthetic
    from nasrec_torchrec.errors import NASRecError

    data = str(tmp_path / "noval")
    write_synthetic("criteo", 600, data, split="100,0,0")
    with pytest.raises(NASRecError, match="val split"):
        run_command("final", ["--arch", ARCH, "--data", data, "--output",
                              str(tmp_path / "out"), "--protocol", "bars", *FAST])
