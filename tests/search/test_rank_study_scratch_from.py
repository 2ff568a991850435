"""Ranking study with --scratch-from: another study's from-scratch results, nothing retrained."""

from __future__ import annotations

import argparse
import json

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.rank_study import SUBNETS_FILE, read_scratch_results, sample_subnets
from nasrec_torchrec.space import get_space


def _write_study(directory, architectures, **extra) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"index": i, "architecture": a.to_dict(), "scratch_log_loss": 0.4 + i,
                         "scratch_auc": 0.7, "scratch_steps": 9, "scratch_seconds": 1.5,
                         "supernet_finetuned_log_loss": 0.5, **extra})
             for i, a in enumerate(architectures)]
    (directory / SUBNETS_FILE).write_text("\n".join(lines) + "\n")


def test_read_scratch_results_checks_the_subnets(tmp_path):
    space = get_space("nasrec-small")
    subnets = sample_subnets(space, 4, seed=1)
    _write_study(tmp_path / "a", subnets)
    found = read_scratch_results(str(tmp_path / "a"), subnets[:3])
    assert found == [{"scratch_log_loss": 0.4 + i, "scratch_auc": 0.7, "scratch_steps": 9,
                      "scratch_seconds": 1.5} for i in range(3)]
    with pytest.raises(NASRecError, match="has 4 subnets, this study needs 5"):
        read_scratch_results(str(tmp_path / "a"), sample_subnets(space, 5, seed=1))
    with pytest.raises(NASRecError, match="subnet 0 differs"):
        read_scratch_results(str(tmp_path / "a"), sample_subnets(space, 3, seed=2))
    with pytest.raises(NASRecError, match="not a rank-study output"):
        read_scratch_results(str(tmp_path / "missing"), subnets)
    _write_study(tmp_path / "b", subnets, scratch_from="/x/a")
    with pytest.raises(NASRecError, match="use /x/a"):
        read_scratch_results(str(tmp_path / "b"), subnets)


@pytest.mark.usefixtures("one_thread")
def test_rank_study_reuses_scratch_results_of_another_study(supernet_run, tmp_path):
    pytest.importorskip("torch")
    from nasrec_torchrec.commands import rank_study

    parser = argparse.ArgumentParser()
    rank_study.add_arguments(parser)
    common = ["--supernet", supernet_run, "--num-subnets", "3", "--train-steps", "2",
              "--finetune-steps", "2", "--finetune-batch-size", "64", "--threads", "1",
              "--no-progress"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert rank_study.run(parser.parse_args([*common, "--output", str(first)])) == 0
    assert rank_study.run(parser.parse_args(
        [*common, "--output", str(second), "--scratch-from", str(first)])) == 0

    def records(study):
        return [json.loads(line) for line in (study / SUBNETS_FILE).read_text().splitlines()]

    for a, b in zip(records(first), records(second), strict=True):
        assert b["scratch_from"] == str(first)
        for field in ("scratch_log_loss", "scratch_auc", "scratch_steps", "scratch_seconds",
                      "supernet_finetuned_log_loss", "architecture"):
            assert b[field] == a[field]
    assert not (second / "subnets").exists()  # nothing trained from scratch
    summary = json.loads((second / "rank_study.json").read_text())
    assert summary["scratch_from"] == str(first)
    assert summary["scratch_training"] == json.loads(
        (first / "rank_study.json").read_text())["scratch_training"]
    assert summary["finetuned"] == json.loads((first / "rank_study.json").read_text())["finetuned"]
    # the study cannot be continued without the option it began with
    with pytest.raises(NASRecError, match="--scratch-from differs"):
        rank_study.run(parser.parse_args([*common, "--output", str(second)]))
    # another proxy (every dense weight fine-tuned) against the same from-scratch runs
    full = tmp_path / "full"
    assert rank_study.run(parser.parse_args(
        [*common, "--output", str(full), "--finetune", "full", "--scratch-from", str(first)])) == 0
    for a, b in zip(records(first), records(full), strict=True):
        assert (a["finetune"], b["finetune"]) == ("head", "full")
        for field in ("scratch_auc", "supernet_inherited_log_loss", "architecture"):
            assert b[field] == a[field]
        assert b["supernet_finetuned_log_loss"] != a["supernet_finetuned_log_loss"]
    with pytest.raises(NASRecError, match="scored with --finetune head, not full"):
        rank_study.run(parser.parse_args([*common, "--output", str(second), "--finetune", "full",
                                          "--scratch-from", str(first)]))


def test_finished_scratch_run_is_reused_only_with_the_same_subnet_and_settings(tmp_path):
    from nasrec_torchrec.model_spec import ModelSpec
    from nasrec_torchrec.search.scratch import ScratchTraining, finished_scratch_run

    first, second = sample_subnets(get_space("nasrec-small"), 2, seed=3)
    settings = ScratchTraining(steps=300, batch_size=256, learning_rate=0.04,
                               embedding_cap=500000, layer_norm=True, seed=0)
    data = tmp_path / "data"
    data.mkdir()
    config = {"max_steps": 300, "batch_size": 256, "learning_rate": 0.04,
              "embedding_cap": 500000, "seed": 0, "clip_grad_norm": None,
              "data": str(data / "." / ""),
              "model": ModelSpec.for_architecture(first, layer_norm=True).to_dict()}
    run = tmp_path / "run"
    assert finished_scratch_run(first, str(data), str(run), settings) is None  # nothing yet
    run.mkdir()
    results = {"steps": 300, "train_seconds": 2.0, "val": {"log_loss": 0.4, "auc": 0.7},
               "config": config}
    (run / "results.json").write_text(json.dumps(results))
    assert finished_scratch_run(first, str(data), str(run), settings) == results
    assert finished_scratch_run(second, str(data), str(run), settings) is None
    assert finished_scratch_run(first, str(tmp_path), str(run), settings) is None
    for change in ({"steps": 200}, {"seed": 1}, {"layer_norm": False}, {"embedding_cap": None},
                   {"clip_grad_norm": 5.0}):
        other = ScratchTraining(**{**settings.to_dict(), **change})
        assert finished_scratch_run(first, str(data), str(run), other) is None
