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
