"""The run directory: metrics truncation, fresh starts, --overwrite, checkpoint pruning."""

from __future__ import annotations

import json
import os

import pytest

from nasrec_torchrec.artifacts import (
    CHECKPOINT_DIR, EARLY_STOPPING_FILE, METRICS_FILE, RESULTS_FILE, read_jsonl)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.checkpoint import STATE_FILE, list_checkpoints, step_directory
from nasrec_torchrec.train.run_dir import RunDirectory


def _fake_checkpoint(output: str, step: int) -> str:
    path = step_directory(os.path.join(output, CHECKPOINT_DIR), step)
    os.makedirs(path)
    with open(os.path.join(path, STATE_FILE), "w") as handle:
        json.dump({"step": step}, handle)
    return path


def test_metrics_are_appended_and_truncated_to_a_step(tmp_path):
    run_dir = RunDirectory(str(tmp_path), is_main=True)
    for step in range(1, 6):
        run_dir.append_metrics({"step": step, "loss": 1.0 / step})
    run_dir.truncate_metrics(3)
    assert read_jsonl(run_dir.path(METRICS_FILE)) == [
        {"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}, {"step": 3, "loss": 1.0 / 3}]


def test_only_the_main_rank_writes(tmp_path):
    run_dir = RunDirectory(str(tmp_path / "run"), is_main=False)
    run_dir.create()
    run_dir.append_metrics({"step": 1})
    run_dir.write_json(RESULTS_FILE, {"steps": 1})
    assert not os.path.exists(tmp_path / "run")


def test_a_fresh_start_refuses_checkpoints_and_overwrite_clears_the_earlier_run(tmp_path):
    run_dir = RunDirectory(str(tmp_path), is_main=True)
    _fake_checkpoint(str(tmp_path), 4)
    run_dir.append_metrics({"step": 4})
    for name in (RESULTS_FILE, EARLY_STOPPING_FILE):
        run_dir.write_json(name, {"steps": 4})
    with pytest.raises(NASRecError, match="holds checkpoints of an earlier run"):
        run_dir.start_fresh(overwrite=False)
    run_dir.start_fresh(overwrite=True)
    assert list_checkpoints(run_dir.checkpoint_dir) == []
    assert not os.path.exists(run_dir.path(RESULTS_FILE))
    assert not os.path.exists(run_dir.path(EARLY_STOPPING_FILE))
    assert not os.path.exists(run_dir.path(METRICS_FILE))


def test_a_fresh_start_empties_the_metrics_of_a_run_without_checkpoints(tmp_path):
    run_dir = RunDirectory(str(tmp_path), is_main=True)
    run_dir.append_metrics({"step": 1})
    run_dir.start_fresh(overwrite=False)
    assert read_jsonl(run_dir.path(METRICS_FILE)) == []


def test_keep_only_checkpoint_deletes_the_others(tmp_path):
    run_dir = RunDirectory(str(tmp_path), is_main=True)
    kept = _fake_checkpoint(str(tmp_path), 8)
    for step in (4, 12):
        _fake_checkpoint(str(tmp_path), step)
    run_dir.keep_only_checkpoint(kept)
    assert list_checkpoints(run_dir.checkpoint_dir) == [(8, kept)]
