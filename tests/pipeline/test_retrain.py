"""`nasrec retrain`: top-k distinct candidates by search loss, best by retrained val loss."""

from __future__ import annotations

import json
import math
import os

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.stages.training import load_candidates, top_candidates
from nasrec_torchrec.space import Architecture

from pipeline_helpers import TINY_TRAIN, run_command, write_candidates

pytestmark = pytest.mark.usefixtures("one_thread")


def test_top_candidates_are_the_k_lowest_finite_losses_without_duplicates(tmp_path) -> None:
    path = str(tmp_path / "candidates.jsonl")
    records = write_candidates(path, [0.50, float("nan"), 0.40, 0.45, 0.60])
    duplicate = dict(records[2], index=5, loss=0.41)  # same architecture as index 2
    with open(path, "a") as handle:
        handle.write(json.dumps(duplicate) + "\n")
    chosen = top_candidates(load_candidates(path), 3, path)
    assert [record["index"] for record, _ in chosen] == [2, 3, 0]
    with pytest.raises(NASRecError, match="top-k"):
        top_candidates(load_candidates(path), 0, path)


def test_retrain_picks_the_best_by_retrained_val_loss_and_skips_finished_runs(
        tiny_criteo, tmp_path) -> None:
    search = tmp_path / "search"
    search.mkdir()
    records = write_candidates(str(search / "candidates.jsonl"), [0.50, 0.40, 0.45, 0.90])
    output = str(tmp_path / "retrain")
    argv = ["--search", str(search), "--data", tiny_criteo, "--output", output, "--top-k", "3",
            "--max-steps", "3", *TINY_TRAIN]
    assert run_command("retrain", argv) == 0

    with open(os.path.join(output, "retrain.json")) as handle:
        summary = json.load(handle)
    rows = summary["candidates"]
    # top 3 by search loss, in order: indices 1, 2, 0 (0.90 left out)
    assert [row["search_index"] for row in rows] == [1, 2, 0]
    retrained = []
    for row in rows:
        with open(os.path.join(output, row["dir"], "results.json")) as handle:
            retrained.append(json.load(handle)["val"]["log_loss"])
        assert math.isclose(row["log_loss"], retrained[-1])
    best = min(range(3), key=lambda i: retrained[i])
    assert summary["best"]["rank"] == best
    with open(os.path.join(output, "best_architecture.json")) as handle:
        chosen = Architecture.from_json(handle.read())
    expected = Architecture.from_dict(records[rows[best]["search_index"]]["architecture"])
    assert chosen == expected

    # again: every candidate is done, nothing retrains
    stamps = [os.path.getmtime(os.path.join(output, row["dir"], "results.json")) for row in rows]
    assert run_command("retrain", argv) == 0
    assert stamps == [os.path.getmtime(os.path.join(output, row["dir"], "results.json"))
                      for row in rows]


def _retrained(output: str) -> dict:
    """retrain.json without its timings, and each candidate's metrics and validation."""
    with open(os.path.join(output, "retrain.json")) as handle:
        summary = json.load(handle)
    rows = [{key: value for key, value in row.items() if key != "train_seconds"}
            for row in summary["candidates"]]
    runs = []
    for row in rows:
        with open(os.path.join(output, row["dir"], "metrics.jsonl")) as handle:
            losses = [json.loads(line)["loss"] for line in handle]
        with open(os.path.join(output, row["dir"], "results.json")) as handle:
            results = json.load(handle)
        runs.append((losses, results["val"], results["world_size"]))
    return {"rows": rows, "best": summary["best"]["rank"], "runs": runs}


def test_two_ranks_retrain_the_candidates_as_one_rank_does(nasrec, tiny_criteo, tmp_path
                                                           ) -> None:
    """Each rank trains its share of the candidates in a one-rank process of its own: the
    table, the winner and every candidate's losses are those of one rank."""
    search = tmp_path / "search"
    search.mkdir()
    write_candidates(str(search / "candidates.jsonl"), [0.50, 0.40, 0.45, 0.90])

    def argv(output: str) -> list[str]:
        return ["retrain", "--search", str(search), "--data", tiny_criteo, "--output",
                str(tmp_path / output), "--top-k", "3", "--max-steps", "3", "--log-every",
                "1", "--checkpoint-every", "0", *TINY_TRAIN]

    nasrec(argv("one"))
    nasrec(argv("two"), ranks=2)  # rank 0 trains candidates 00 and 02, rank 1 01
    one = _retrained(str(tmp_path / "one"))
    assert _retrained(str(tmp_path / "two")) == one
    assert [world_size for _, _, world_size in one["runs"]] == [1, 1, 1]


def _summary_and_results(output: str) -> tuple[dict, list[dict]]:
    """retrain.json and each candidate's own results.json, in rank order."""
    with open(os.path.join(output, "retrain.json")) as handle:
        summary = json.load(handle)
    results = []
    for row in summary["candidates"]:
        with open(os.path.join(output, row["dir"], "results.json")) as handle:
            results.append(json.load(handle))
    return summary, results


def test_retrain_with_patience_selects_by_the_best_epochs_auc_or_log_loss(tiny_criteo, tmp_path
                                                                           ) -> None:
    """The final recipe per candidate: early stopping on val AUC, the best epoch restored and
    reported; the winner has the highest best-epoch AUC; --select log_loss reselects the
    same runs by the lowest log loss without training them again."""
    search = tmp_path / "search"
    search.mkdir()
    write_candidates(str(search / "candidates.jsonl"), [0.50, 0.40, 0.45, 0.47])
    output = str(tmp_path / "retrain")
    argv = ["--search", str(search), "--data", tiny_criteo, "--output", output, "--top-k", "3",
            "--batch-size", "256", "--eval-batch-size", "512", "--embedding-cap", "500",
            "--no-progress", "--threads", "1", "--device", "cpu", "--epochs", "4",
            "--patience", "1", "--monitor", "auc", "--lr-plateau-factor", "0.1",
            "--lr", "0.3", "--embedding-lr", "0.3", "--lr-warmup-steps", "0"]
    assert run_command("retrain", argv) == 0
    summary, results = _summary_and_results(output)
    assert (summary["metric"], summary["direction"]) == ("auc", "highest")
    assert summary["selection"] == "highest val auc"
    for row, result in zip(summary["candidates"], results):
        stopping = result["early_stopping"]
        assert stopping["monitor"] == "auc" and stopping["lr_plateau_factor"] == 0.1
        best_epoch = max(stopping["epochs"], key=lambda epoch: (epoch["val"]["auc"],
                                                               -epoch["step"]))
        assert result["best_epoch"] == row["best_epoch"] == best_epoch["epoch"]
        assert row["auc"] == result["val"]["auc"] == best_epoch["val"]["auc"]
        assert row["log_loss"] == result["val"]["log_loss"] == best_epoch["val"]["log_loss"]
    # a candidate stopped early and reports an epoch before its last (the restored one)
    assert any(result["early_stopping"]["stopped"] and result["steps"] < 4 * 9
               and result["best_epoch"] < result["early_stopping"]["epochs"][-1]["epoch"]
               for result in results)
    aucs = [result["val"]["auc"] for result in results]
    losses = [result["val"]["log_loss"] for result in results]
    assert summary["best"]["rank"] == aucs.index(max(aucs))
    assert aucs.index(max(aucs)) != losses.index(min(losses))  # the two selections differ

    stamps = [os.path.getmtime(os.path.join(output, row["dir"], "results.json"))
              for row in summary["candidates"]]
    assert run_command("retrain", [*argv, "--select", "log_loss"]) == 0
    summary, again = _summary_and_results(output)
    assert again == results  # reselected, not retrained
    assert stamps == [os.path.getmtime(os.path.join(output, row["dir"], "results.json"))
                      for row in summary["candidates"]]
    assert (summary["metric"], summary["direction"]) == ("log_loss", "lowest")
    assert summary["best"]["rank"] == losses.index(min(losses))
    with open(os.path.join(output, "best_architecture.json")) as handle:
        chosen = Architecture.from_json(handle.read())
    with open(os.path.join(output, summary["best"]["dir"], "architecture.json")) as handle:
        assert chosen == Architecture.from_json(handle.read())


def test_retrain_selection_metric_follows_the_early_stopping_monitor() -> None:
    from nasrec_torchrec.stages.retrain import selection_metric
    from nasrec_torchrec.train.config import TrainConfig

    assert selection_metric("auto", TrainConfig()) == "log_loss"  # no patience: as before
    assert selection_metric("auto", TrainConfig(patience=2)) == "auc"
    assert selection_metric("auto", TrainConfig(patience=2, monitor="log_loss")) == "log_loss"
    assert selection_metric("log_loss", TrainConfig(patience=2)) == "log_loss"
    assert selection_metric("auc", TrainConfig()) == "auc"
