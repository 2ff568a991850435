"""`nasrec final --repeats N` and `nasrec baselines --repeats N`: the same run with the next
seeds, each a whole final run in `repeat_<i>/`, summed up in the first run's results.json."""

from __future__ import annotations

import json
import logging
import os
import statistics

import pytest

from pipeline_helpers import run_command

pytestmark = pytest.mark.usefixtures("one_thread")

ARCH = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "architectures",
                    "simple.json")
BARS = ["--protocol", "bars", "--epochs", "2", "--batch-size", "512", "--eval-batch-size",
        "512", "--no-progress", "--threads", "1", "--device", "cpu"]


def _results(output: str) -> dict:
    with open(os.path.join(output, "results.json")) as handle:
        return json.load(handle)


def test_final_repeats_train_the_next_seeds_and_a_rerun_reuses_them(tiny_criteo, tmp_path,
                                                                     caplog):
    from nasrec_torchrec.stages.final import final_done

    output, alone = str(tmp_path / "repeats"), str(tmp_path / "seed1")
    flags = ["--arch", ARCH, "--data", tiny_criteo, *BARS]
    with caplog.at_level(logging.INFO, logger="nasrec_torchrec"):
        assert run_command("final", [*flags, "--output", output, "--repeats", "2"]) == 0
    assert "repeat 2/2 (seed 1): val AUC" in caplog.text
    assert run_command("final", [*flags, "--output", alone, "--seed", "1"]) == 0

    results, second = _results(output), _results(os.path.join(output, "repeat_1"))
    one_seed = _results(alone)
    assert second["config"]["seed"] == 1 and results["config"]["seed"] == 0
    assert second["metrics"] == one_seed["metrics"]  # the seed is the only difference
    section = results["repeats"]
    assert section["seeds"] == [0, 1]
    assert [run["output"] for run in section["runs"]] == [".", "repeat_1"]
    for split in ("val", "test"):
        for name in ("auc", "log_loss"):
            pair = [results["metrics"][split][name], one_seed["metrics"][split][name]]
            assert [run["metrics"][split][name] for run in section["runs"]] == pair
            assert section["mean"][split][name] == (pair[0] + pair[1]) / 2
            assert section["std"][split][name] == statistics.stdev(pair)
    assert section["runs"][1]["best_epoch"] == one_seed["selection"]["best_epoch"]
    assert results["timing"]["repeats_seconds"] == second["timing"]["total_seconds"]
    # --repeats 1 writes what a run without the option wrote: no repeats key
    assert "repeats" not in one_seed and "repeats_seconds" not in one_seed["timing"]
    assert set(results) - set(one_seed) == {"repeats"}
    with open(os.path.join(output, "report.md")) as handle:
        assert "## Seeds (2; the metrics above are seed 0's)" in handle.read()
    assert final_done(output, 2) and not final_done(output, 3)

    # a rerun reuses both runs (no file written); an interrupted repeat resumes
    files = [os.path.join(output, "results.json"), os.path.join(output, "repeat_1",
                                                                "results.json")]
    stamps = [os.path.getmtime(path) for path in files]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nasrec_torchrec"):
        assert run_command("final", [*flags, "--output", output, "--repeats", "2",
                                     "--resume"]) == 0
    assert [os.path.getmtime(path) for path in files] == stamps
    assert "(seed 1): " in caplog.text and "(reused: " in caplog.text
    assert "checkpoint saved" not in caplog.text
    os.remove(files[1])  # as if killed after its last checkpoint
    assert run_command("final", [*flags, "--output", output, "--repeats", "2",
                                 "--resume"]) == 0
    assert _results(os.path.join(output, "repeat_1"))["metrics"] == one_seed["metrics"]
    resumed = _results(output)["repeats"]  # the same metrics; the repeat's times are new
    assert (resumed["mean"], resumed["std"]) == (section["mean"], section["std"])


def test_baselines_repeats_train_each_model_with_every_seed(tiny_criteo, tmp_path):
    from nasrec_torchrec.stages.baselines import baselines_done

    output = str(tmp_path / "baselines")
    assert run_command("baselines", ["--models", "linear", "--data", tiny_criteo, "--output",
                                     output, "--repeats", "2", *BARS]) == 0
    results = _results(os.path.join(output, "linear"))
    second = _results(os.path.join(output, "linear", "repeat_1"))
    assert results["repeats"]["seeds"] == [0, 1] and second["config"]["seed"] == 1
    assert results["repeats"]["runs"][1]["metrics"]["val"] == {
        name: second["metrics"]["val"][name] for name in ("auc", "log_loss")}
    assert baselines_done(output, ["linear"], 2) and not baselines_done(output, ["linear"])
