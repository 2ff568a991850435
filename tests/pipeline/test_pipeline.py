"""`nasrec pipeline` on tiny settings: runs end to end, skips finished stages, resumes an
interrupted one."""

from __future__ import annotations

import json
import logging
import os

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.trainer import Trainer

from pipeline_helpers import run_command

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--set", "prepare.rows=3000", "--set", "supernet.max_steps=4",
        "--set", "supernet.batch_size=128", "--set", "supernet.embedding_cap=500",
        "--set", "search.budget=3", "--set", "search.finetune_steps=2",
        "--set", "search.eval_rows=null", "--set", "retrain.top_k=2",
        "--set", "retrain.max_steps=4", "--set", "retrain.batch_size=128",
        "--set", "retrain.embedding_cap=500", "--set", "retrain.checkpoint_every=2",
        "--set", "final.max_steps=3", "--set", "final.batch_size=128",
        "--set", "baselines.model_option=[deepfm:dropout=0.1]",
        "--set", "baselines.model_setting=[dlrm:eps=1.0e-7]",
        "--no-progress", "--threads", "1", "--device", "cpu"]
SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "experiments", "demo.yaml")
RESULTS = {"prepare": "data/schema.json", "supernet": "supernet/results.json",
           "search": "search/search.json", "retrain": "retrain/retrain.json",
           "final": "final/results.json"}


def _pipeline_json(output: str) -> dict:
    with open(os.path.join(output, "pipeline.json")) as handle:
        return json.load(handle)


def _stamps(output: str) -> dict[str, float]:
    return {stage: os.path.getmtime(os.path.join(output, path))
            for stage, path in RESULTS.items()}


def test_pipeline_runs_end_to_end_skips_done_stages_and_resumes_an_interrupted_one(
        tmp_path, monkeypatch, caplog, capsys) -> None:
    output = str(tmp_path / "run")
    argv = ["--config", SPEC, "--output", output, *TINY]

    # 1. interrupt the retrain stage right after the first candidate's step-2 checkpoint
    original_save = Trainer.save

    def save_then_interrupt(self):
        path = original_save(self)
        if self.config.notes.get("stage") == "retrain" and self.step == 2:
            raise KeyboardInterrupt("simulated kill")
        return path

    monkeypatch.setattr(Trainer, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_command("pipeline", argv)
    monkeypatch.setattr(Trainer, "save", original_save)
    state = _pipeline_json(output)
    assert [state["stages"][name]["status"] for name in ("prepare", "supernet", "search")] \
        == ["ran"] * 3
    assert state["stages"]["retrain"]["status"] == "running"
    assert not os.path.exists(os.path.join(output, "retrain", "retrain.json"))

    # 2. again: the finished stages are skipped, retrain resumes from its checkpoint
    caplog.set_level(logging.INFO)
    assert run_command("pipeline", argv) == 0
    state = _pipeline_json(output)
    assert {name: entry["status"] for name, entry in state["stages"].items()} == {
        "prepare": "skipped", "supernet": "skipped", "search": "skipped", "retrain": "ran",
        "final": "ran", "baselines": "ran"}
    assert any("resumed from" in record.getMessage() and "step 2 of 4" in record.getMessage()
               for record in caplog.records)
    with open(os.path.join(output, "retrain", "candidates", "00", "metrics.jsonl")) as handle:
        assert [json.loads(line)["step"] for line in handle] == [4]
    with open(os.path.join(output, "final", "results.json")) as handle:
        results = json.load(handle)
    assert results["metrics"]["test"]["rows"] == 300
    report = os.path.join(output, "final", "report.md")
    assert f"report: {report}" in capsys.readouterr().out
    with open(report) as handle:
        text = handle.read()
    assert "stage supernet" in text and "nasrec train-supernet" in text
    assert state["config"]["retrain"]["top_k"] == 2  # the effective config is recorded
    _check_leaderboard(output, text, state)

    # 3. once more: every stage is skipped, no results file is rewritten
    before = _stamps(output)
    caplog.clear()
    assert run_command("pipeline", argv) == 0
    assert _stamps(output) == before
    assert {entry["status"] for entry in _pipeline_json(output)["stages"].values()} == {"skipped"}
    assert not any("resumed from" in record.getMessage() for record in caplog.records)

    # 4. `nasrec baselines` does not reuse a finished baseline under other settings
    with pytest.raises(NASRecError, match=r"baseline deepfm finished with other settings: "
                                          r".*baseline_options"):
        run_command("baselines", ["--models", "deepfm", "--model-option", "deepfm:dropout=0.3",
                                  "--data", os.path.join(output, "data"), "--output",
                                  os.path.join(output, "baselines"), "--max-steps", "3",
                                  "--batch-size", "128", "--threads", "1", "--device", "cpu"])


def _check_leaderboard(output: str, report: str, state: dict) -> None:
    """The leaderboard lists the found model and every baseline (trained by the final
    recipe), sorted by AUC, and its verdict matches the numbers."""
    with open(os.path.join(output, "final", "results.json")) as handle:
        board = json.load(handle)["leaderboard"]
    assert board == state["leaderboard"] and board["split"] == "test"
    names = [row["model"] for row in board["rows"]]
    assert sorted(names) == sorted(["found architecture", "dlrm", "deepfm", "dcnv2"])
    aucs = {row["model"]: row["metrics"]["test"]["auc"] for row in board["rows"]}
    assert [aucs[name] for name in names] == sorted(aucs.values(), reverse=True)
    best = max((name for name in names if name != "found architecture"), key=aucs.get)
    verdict = board["verdict"]
    assert verdict["best_baseline"] == best
    assert verdict["auc_margin"] == aucs["found architecture"] - aucs[best]
    assert verdict["found_wins"] == (aucs["found architecture"] > aucs[best])
    for name in ("dlrm", "deepfm", "dcnv2"):
        with open(os.path.join(output, "baselines", name, "results.json")) as handle:
            baseline = json.load(handle)
        with open(os.path.join(output, "final", "results.json")) as handle:
            found = json.load(handle)
        for key in ("optimizer", "learning_rate", "batch_size", "max_steps", "embedding_cap",
                    "seed", "lr_schedule"):  # the same recipe as the final model
            assert baseline["config"][key] == found["config"][key], key
        assert baseline["model"] == name and f"| {name} |" in report
    own = {row["model"]: row.get("own_settings") for row in board["rows"]}
    assert own["deepfm"] == ["dropout=0.1"] and own["dlrm"] == ["eps=1e-07"]
    assert own["dcnv2"] == [] and "- dcnv2: the final recipe as it is" in report
    assert "## Leaderboard (sorted by test AUC)" in report and "Verdict: the found model" in report


HELDOUT_SPEC = os.path.join(os.path.dirname(SPEC), "frappe-heldout.yaml")
HELDOUT_TINY = ["--set", "supernet.max_steps=4", "--set", "supernet.batch_size=128",
                "--set", "supernet.embedding_cap=500", "--set", "search.method=random",
                "--set", "search.budget=2", "--set", "search.finetune_steps=2",
                "--set", "search.eval_rows=null", "--set", "retrain.top_k=1",
                "--set", "retrain.max_steps=4", "--set", "retrain.batch_size=128",
                "--set", "retrain.embedding_cap=500", "--set", "final.epochs=2",
                "--set", "final.batch_size=512",
                "--no-progress", "--threads", "1", "--device", "cpu"]


def _frappe_like_csv(path: str, rows: int, seed: int) -> None:
    """A BARS-style CSV (label + 3 categorical columns); the label follows `user`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, 40, rows), rng.integers(0, 60, rows)
    labels = (rng.random(rows) < np.where(users % 3 == 0, 0.7, 0.15)).astype(int)
    with open(path, "w") as handle:
        handle.write("label,user,item,city\n")
        for label, user, item in zip(labels, users, items):
            handle.write(f"{label},u{user},i{item},c{item % 5}\n")


def _heldout_argv(tmp_path, *settings: str) -> tuple[str, list[str]]:
    """(output, pipeline argv) of the held-out spec on two small Frappe-like CSVs."""
    train, valid = str(tmp_path / "train.csv"), str(tmp_path / "valid.csv")
    _frappe_like_csv(train, 1800, seed=0)
    _frappe_like_csv(valid, 300, seed=1)
    output = str(tmp_path / "run")
    return output, ["--config", HELDOUT_SPEC, "--output", output, "--set",
                    f"prepare.inputs=[train={train}, test={valid}]", *settings, *HELDOUT_TINY]


def test_the_heldout_spec_selects_on_val_carved_from_train_and_compares_on_test(
        tmp_path, capsys) -> None:
    output, argv = _heldout_argv(tmp_path)
    assert run_command("pipeline", argv) == 0
    printed = capsys.readouterr().out
    with open(os.path.join(output, "data", "schema.json")) as handle:
        schema = json.load(handle)
    assert schema["splits"]["test"] == 300  # valid.csv, as it is
    assert schema["splits"]["train"] + schema["splits"]["val"] == 1800
    assert abs(schema["splits"]["val"] - 200) <= 2  # 1/9 of each label, within a block
    assert schema["extra"]["split"]["val_from_train"] == {"share": "1/9", "weights": [8, 1],
                                                          "seed": 0}
    state = _pipeline_json(output)
    assert "--val-from-train 1/9" in state["stages"]["prepare"]["command"]
    with open(os.path.join(output, "final", "results.json")) as handle:
        results = json.load(handle)
    assert (results["protocol"], results["report_split"]) == ("bars", "test")
    assert results["metrics"]["test"]["rows"] == 300
    assert results["metrics"]["val"]["rows"] == schema["splits"]["val"]
    board = results["leaderboard"]
    assert board["split"] == "test" and len(board["rows"]) == 4
    assert all(set(row["metrics"]) == {"val", "test"} for row in board["rows"])
    aucs = {row["model"]: row["metrics"]["test"]["auc"] for row in board["rows"]}
    best = max(("dlrm", "deepfm", "dcnv2"), key=aucs.get)
    verdict = board["verdict"]
    assert (verdict["split"], verdict["best_baseline"]) == ("test", best)
    assert verdict["auc_margin"] == aucs["found architecture"] - aucs[best]
    word = "beats" if aucs["found architecture"] > aucs[best] else "trails"
    line = (f"the found model {word} the best baseline ({best}) on test by "
            f"{abs(verdict['auc_margin']):.5f} AUC")
    assert f"leaderboard: {line}" in printed


def test_final_repeats_train_the_found_model_and_every_baseline_with_each_seed(
        tmp_path, capsys) -> None:
    output, argv = _heldout_argv(tmp_path, "--set", "final.repeats=2")
    assert run_command("pipeline", argv) == 0
    printed = capsys.readouterr().out
    with open(os.path.join(output, "final", "results.json")) as handle:
        results = json.load(handle)
    board = results["leaderboard"]
    assert [row["seeds"] for row in board["rows"]] == [2, 2, 2, 2]
    means = [row["metrics"]["test"]["auc"] for row in board["rows"]]
    assert means == sorted(means, reverse=True)
    found = next(row for row in board["rows"] if row["found"])
    assert found["metrics"]["test"] == {name: results["repeats"]["mean"]["test"][name]
                                        for name in ("auc", "log_loss")}
    verdict = board["verdict"]
    assert (verdict["seeds"], verdict["baseline_seeds"]) == (2, 2)
    assert verdict["auc_margin_standard_error"] > 0
    assert (f"on test by {abs(verdict['auc_margin']):.5f} AUC (mean of 2 seeds; standard "
            f"error {verdict['auc_margin_standard_error']:.5f})") in printed
    with open(os.path.join(output, "final", "report.md")) as handle:
        assert "| **found architecture** (2 seeds) | " in handle.read()
    for name in ("dlrm", "deepfm", "dcnv2"):
        assert os.path.exists(os.path.join(output, "baselines", name, "repeat_1",
                                           "results.json"))

    assert run_command("pipeline", argv) == 0  # all done: every stage skipped
    assert {entry["status"] for entry in _pipeline_json(output)["stages"].values()} == {
        "skipped"}
