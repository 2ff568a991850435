"""`--spread` under torchrun: the final stage's seeds and the baselines' runs trained side by
side, one rank each in a one-rank process, give exactly what one rank gives; without it
every run is sharded over all the ranks, one after the other, in one process group."""

from __future__ import annotations

import json
import os

import pytest

from test_final_repeats import ARCH, BARS

pytestmark = pytest.mark.usefixtures("one_thread")


def _read(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def _run(run_dir: str) -> tuple:
    """A run's metrics, per-step losses and the world size it trained on."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as handle:
        losses = [json.loads(line)["loss"] for line in handle if '"loss"' in line]
    return (_read(os.path.join(run_dir, "results.json"))["metrics"], losses,
            _read(os.path.join(run_dir, "config.json"))["world_size"])


def _runs(output: str, models: list[str], repeats: int) -> dict:
    """Every run of `output` (a final run, or baselines' `<model>/` runs) and the repeats
    sections' means and standard deviations."""
    found = {}
    for model in models:
        first = os.path.join(output, model)
        dirs = [first, *(os.path.join(first, f"repeat_{index}") for index in range(1, repeats))]
        found[model] = [_run(run_dir) for run_dir in dirs]
        section = _read(os.path.join(first, "results.json"))["repeats"]
        found[model].append((section["seeds"], section["mean"], section["std"]))
    return found


def test_spread_seeds_on_two_ranks_train_each_as_one_rank_does(nasrec, tiny_criteo, tmp_path):
    flags = ["final", "--arch", ARCH, "--data", tiny_criteo, *BARS, "--repeats", "3",
             "--log-every", "1", "--checkpoint-every", "0"]
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    nasrec([*flags, "--output", one])
    nasrec([*flags, "--output", two, "--spread"], ranks=2)  # seeds 0, 2 on rank 0; 1 on rank 1
    expected = _runs(one, [""], 3)
    assert _runs(two, [""], 3) == expected
    assert [world for _, _, world in expected[""][:3]] == [1, 1, 1]
    assert os.path.exists(os.path.join(two, "report.md"))
    # a rerun under torchrun finds every seed finished and trains nothing
    stamps = [os.path.getmtime(os.path.join(two, *part, "results.json"))
              for part in ([], ["repeat_1"], ["repeat_2"])]
    nasrec([*flags, "--output", two, "--spread", "--resume"], ranks=2)
    assert stamps == [os.path.getmtime(os.path.join(two, *part, "results.json"))
                      for part in ([], ["repeat_1"], ["repeat_2"])]


def test_spread_baselines_on_two_ranks_train_each_run_as_one_rank_does(nasrec, tiny_criteo,
                                                                      tmp_path):
    flags = ["baselines", "--models", "linear", "deepfm", "--model-option", "deepfm:dropout=0.3",
             "--model-setting", "deepfm:eps=1.0e-7", "--data", tiny_criteo, *BARS,
             "--log-every", "1", "--checkpoint-every", "0"]
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    nasrec([*flags, "--output", one])
    nasrec([*flags, "--output", two, "--spread"], ranks=2)  # linear on rank 0, deepfm on 1
    for model in ("linear", "deepfm"):
        expected = _run(os.path.join(one, model))
        assert _run(os.path.join(two, model)) == expected and expected[2] == 1
    assert _read(os.path.join(two, "deepfm", "config.json"))["config"]["eps"] == 1.0e-7


def test_without_spread_every_run_is_sharded_over_both_ranks_in_turn(nasrec, tiny_criteo,
                                                                    tmp_path):
    output = str(tmp_path / "sharded")
    nasrec(["baselines", "--models", "linear", "deepfm", "--data", tiny_criteo, *BARS,
            "--repeats", "2", "--checkpoint-every", "0", "--output", output], ranks=2)
    runs = _runs(output, ["linear", "deepfm"], 2)
    assert [world for model in runs.values() for _, _, world in model[:2]] == [2, 2, 2, 2]


def test_a_pipeline_on_two_ranks_spreads_the_final_seeds_and_the_baselines(nasrec, tmp_path):
    from test_pipeline import SPEC, TINY

    output = str(tmp_path / "run")
    nasrec(["pipeline", "--config", SPEC, "--output", output, *TINY, "--set",
            "final.repeats=2", "--set", "final.spread=true", "--set",
            "baselines.models=[dlrm, deepfm]"], ranks=2)
    runs = {"final": os.path.join(output, "final"),
            **{name: os.path.join(output, "baselines", name) for name in ("dlrm", "deepfm")}}
    for first in runs.values():
        for run_dir in (first, os.path.join(first, "repeat_1")):
            assert _read(os.path.join(run_dir, "config.json"))["world_size"] == 1
    board = _read(os.path.join(runs["final"], "results.json"))["leaderboard"]
    assert [row["seeds"] for row in board["rows"]] == [2, 2, 2]
    # one pass over the final model's and the baselines' runs, before the final stage ends
    assert _read(os.path.join(output, "pipeline.json"))["stages"]["final"]["runs_spread"] == 6
    final_written = os.stat(os.path.join(runs["final"], "results.json")).st_mtime_ns
    for name in ("dlrm", "deepfm"):
        second_seed = os.path.join(runs[name], "repeat_1", "results.json")
        assert os.stat(second_seed).st_mtime_ns < final_written
