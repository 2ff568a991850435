"""Ranking study: correlations pinned against scipy and by hand; a tiny run end to end."""

from __future__ import annotations

import argparse
import json
import math
import shutil

import pytest

from nasrec_torchrec.search.rank_study import correlations, sample_subnets
from nasrec_torchrec.space import get_space

SUPERNET = [0.452, 0.448, 0.461, 0.447, 0.455, 0.450, 0.470, 0.449]
SCRATCH = [0.4431, 0.4420, 0.4452, 0.4425, 0.4418, 0.4433, 0.4470, 0.4419]


def test_correlations_match_scipy_and_hand_computation():
    from scipy import stats

    result = correlations(SUPERNET, SCRATCH)
    assert result["n"] == 8
    assert result["pearson"] == pytest.approx(stats.pearsonr(SUPERNET, SCRATCH)[0], abs=1e-12)
    assert result["kendall"] == pytest.approx(stats.kendalltau(SUPERNET, SCRATCH)[0], abs=1e-12)
    assert result["spearman"] == pytest.approx(stats.spearmanr(SUPERNET, SCRATCH)[0], abs=1e-12)
    # by hand: Pearson's r, and Kendall's tau from concordant / discordant pairs (no ties)
    mx, my = sum(SUPERNET) / 8, sum(SCRATCH) / 8
    cov = sum((x - mx) * (y - my) for x, y in zip(SUPERNET, SCRATCH))
    r = cov / math.sqrt(sum((x - mx) ** 2 for x in SUPERNET) * sum((y - my) ** 2 for y in SCRATCH))
    assert result["pearson"] == pytest.approx(r, abs=1e-12)
    pairs = [(i, j) for i in range(8) for j in range(i + 1, 8)]
    concordant = sum((SUPERNET[i] - SUPERNET[j]) * (SCRATCH[i] - SCRATCH[j]) > 0 for i, j in pairs)
    assert result["kendall"] == pytest.approx((2 * concordant - len(pairs)) / len(pairs), abs=1e-12)
    assert result["kendall"] == pytest.approx(10 / 28, abs=1e-12)  # 19 concordant, 9 discordant


def test_correlations_skip_non_finite_pairs_and_need_three():
    result = correlations([1.0, 2.0, math.nan, 3.0], [1.0, 2.5, 2.0, 2.9])
    assert result["n"] == 3 and result["kendall"] == pytest.approx(1.0)
    assert math.isnan(correlations([1.0, 2.0], [2.0, 1.0])["pearson"])


def test_subnets_are_distinct_and_seeded():
    space = get_space("nasrec-small")
    first = sample_subnets(space, 20, seed=4)
    assert first == sample_subnets(space, 20, seed=4)
    assert len({a.canonical() for a in first}) == 20


@pytest.mark.usefixtures("one_thread")
def test_rank_study_command_end_to_end_and_continues(supernet_run, tmp_path):
    pytest.importorskip("torch")
    from nasrec_torchrec.commands import rank_study

    output = tmp_path / "rank"
    argv = ["--supernet", supernet_run, "--output", str(output), "--num-subnets", "3",
            "--train-steps", "2", "--finetune-steps", "2", "--finetune-batch-size", "64",
            "--threads", "1", "--no-progress"]
    parser = argparse.ArgumentParser()
    rank_study.add_arguments(parser)
    assert rank_study.run(parser.parse_args(argv)) == 0
    summary = json.loads((output / "rank_study.json").read_text())
    records = [json.loads(line) for line in
               (output / "rank_study_subnets.jsonl").read_text().splitlines()]
    assert summary["num_subnets"] == len(records) == 3
    assert all(r["scratch_steps"] == 2 for r in records)
    expected = correlations([r["supernet_finetuned_log_loss"] for r in records],
                            [r["scratch_log_loss"] for r in records])
    assert summary["finetuned"]["pearson"] == pytest.approx(expected["pearson"])
    assert (output / "rank_study.png").stat().st_size > 1000
    # a rerun finds every subnet done and trains nothing again
    assert rank_study.run(parser.parse_args(argv)) == 0
    assert (output / "rank_study_subnets.jsonl").read_text().count("\n") == 3


@pytest.mark.usefixtures("one_thread")
def test_scratch_runs_clip_as_the_supernet_unless_told(supernet_run, tmp_path):
    pytest.importorskip("torch")
    from nasrec_torchrec.commands import rank_study
    from nasrec_torchrec.stages.rank_study import _scratch_clip
    from nasrec_torchrec.errors import NASRecError

    assert _scratch_clip(None, 5.0) == 5.0  # the supernet's
    assert _scratch_clip(0.0, 5.0) is None and _scratch_clip(2.5, None) == 2.5
    parser = argparse.ArgumentParser()
    rank_study.add_arguments(parser)
    output = tmp_path / "rank"
    with pytest.raises(NASRecError, match="train-clip-grad-norm"):
        rank_study.run(parser.parse_args(["--supernet", supernet_run, "--output", str(output),
                                          "--train-clip-grad-norm", "-1"]))
    assert not output.exists()  # refused before anything is loaded or written
    assert rank_study.run(parser.parse_args([
        "--supernet", supernet_run, "--output", str(output), "--num-subnets", "3",
        "--train-steps", "1", "--finetune-steps", "1", "--finetune-batch-size", "64",
        "--threads", "1", "--no-progress", "--train-clip-grad-norm", "2.5"])) == 0
    summary = json.loads((output / "rank_study.json").read_text())
    assert summary["scratch_training"]["clip_grad_norm"] == 2.5
    run_config = json.loads((output / "subnets" / "0000" / "config.json").read_text())
    assert run_config["config"]["clip_grad_norm"] == 2.5


def test_two_ranks_study_the_subnets_as_one_rank_does(nasrec, supernet_run, tmp_path):
    """Each rank scores its share of the subnets (and would train it from scratch in a
    one-rank process of its own: as `retrain` does, tested there; here the from-scratch runs
    of the one-rank study are found finished and reused); rank 0 writes every record, in
    order, as one rank writes them."""
    timing = ("scoring_seconds", "scratch_seconds")

    def study(output: str, ranks: int) -> list[dict]:
        nasrec(["rank-study", "--supernet", supernet_run, "--output", str(tmp_path / output),
                "--num-subnets", "3", "--train-steps", "2", "--finetune-steps", "2",
                "--finetune-batch-size", "64", "--threads", "1", "--no-progress"], ranks=ranks)
        lines = (tmp_path / output / "rank_study_subnets.jsonl").read_text().splitlines()
        return [{key: value for key, value in json.loads(line).items() if key not in timing}
                for line in lines]

    one = study("one", 1)
    shutil.copytree(tmp_path / "one" / "subnets", tmp_path / "two" / "subnets")
    assert study("two", 2) == one and [record["index"] for record in one] == [0, 1, 2]
    summaries = [json.loads((tmp_path / name / "rank_study.json").read_text())
                 for name in ("one", "two")]
    assert summaries[1]["finetuned"] == summaries[0]["finetuned"]
    assert summaries[1]["inherited"] == summaries[0]["inherited"]
