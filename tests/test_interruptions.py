"""`kill -9` at several points, then the same command again (the pipeline) or with
`--resume`: the results equal an uninterrupted run's, bit for bit.

Every run is a process of its own, forked by `kill_driver.py` (which imported torch once;
the `nasrec` fixture of tests/conftest.py) and SIGKILLed at the point asked, as a killed job
would be; marked `interruption` (`-m "not interruption"` leaves them out).
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.interruption

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "..", "specs", "experiments", "demo.yaml")
LOG_EVERY_STEP = '[--log-every, "1"]'
PIPELINE = ["--set", "prepare.rows=2000", "--set", "supernet.max_steps=4",
            "--set", "supernet.batch_size=128", "--set", "supernet.embedding_cap=300",
            "--set", "supernet.checkpoint_every=2", "--set", f"supernet.args={LOG_EVERY_STEP}",
            "--set", "search.budget=3", "--set", "search.finetune_steps=2",
            "--set", "search.eval_rows=null", "--set", "retrain.top_k=2",
            "--set", "retrain.max_steps=4", "--set", "retrain.batch_size=128",
            "--set", "retrain.embedding_cap=300", "--set", "retrain.checkpoint_every=2",
            "--set", f"retrain.args={LOG_EVERY_STEP}", "--set", "final.max_steps=3",
            "--set", "final.batch_size=128", "--set", f"final.args={LOG_EVERY_STEP}",
            "--no-progress", "--threads", "1", "--device", "cpu"]
KILLED = [-9]


def _json(*parts: str) -> dict:
    with open(os.path.join(*parts)) as handle:
        return json.load(handle)


def _losses(run_dir: str) -> list[float]:
    with open(os.path.join(run_dir, "metrics.jsonl")) as handle:
        return [json.loads(line)["loss"] for line in handle]


def test_the_pipeline_killed_in_every_stage_ends_as_an_uninterrupted_one(nasrec, tmp_path):
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    nasrec(["pipeline", "--config", SPEC, "--output", reference, *PIPELINE])
    argv = ["pipeline", "--config", SPEC, "--output", killed, *PIPELINE]
    # one kill per run, each later in the pipeline than the one before:
    for point in (("checkpoint", 1),  # supernet: its step-2 checkpoint is complete
                  ("search-state", 1),  # search: its first generation is saved
                  ("staging", 2),  # retrain: candidate 00's step-4 checkpoint half-written
                  ("checkpoint", 4)):  # final: its checkpoint is complete, no results yet
        assert nasrec(argv, point) == KILLED
    nasrec(argv)

    for stage in ("supernet", "retrain/candidates/00", "retrain/candidates/01", "final"):
        assert _losses(os.path.join(killed, stage)) == _losses(os.path.join(reference, stage))
    assert _json(killed, "supernet", "results.json")["val"] == \
        _json(reference, "supernet", "results.json")["val"]
    with open(os.path.join(killed, "search", "candidates.jsonl")) as mine, \
            open(os.path.join(reference, "search", "candidates.jsonl")) as theirs:
        drop = ("seconds",)
        assert [{k: v for k, v in json.loads(line).items() if k not in drop} for line in mine] \
            == [{k: v for k, v in json.loads(line).items() if k not in drop} for line in theirs]
    retrain = [_json(run, "retrain", "retrain.json")["candidates"] for run in (killed, reference)]
    assert [(row["log_loss"], row["auc"]) for row in retrain[0]] == \
        [(row["log_loss"], row["auc"]) for row in retrain[1]]
    assert _json(killed, "final", "results.json")["metrics"] == \
        _json(reference, "final", "results.json")["metrics"]
    assert not [name for name in os.listdir(os.path.join(killed, "retrain", "candidates", "00",
                                                         "checkpoints"))
                if name.startswith(".staging")]


def test_two_rank_supernet_training_killed_and_resumed_equals_uninterrupted(nasrec, tmp_path):
    from nasrec_torchrec.data.synth import write_synthetic

    data = str(tmp_path / "data")
    write_synthetic("criteo", 1600, data, seed=0, row_group_rows=500)

    def argv(output: str) -> list[str]:
        return ["train-supernet", "--data", data, "--space", "nasrec-small", "--output",
                output, "--max-steps", "6", "--checkpoint-every", "2", "--batch-size", "128",
                "--embedding-cap", "300", "--log-every", "1", "--no-progress", "--threads", "1",
                "--device", "cpu"]

    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    nasrec(argv(reference), ranks=2)
    assert nasrec(argv(killed), ("checkpoint", 2), ranks=2) == KILLED * 2  # after step 4's
    nasrec([*argv(killed), "--resume"], ranks=2)
    assert _losses(killed) == _losses(reference)
    assert _json(killed, "results.json")["val"] == _json(reference, "results.json")["val"]
