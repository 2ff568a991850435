"""Ranking study with several from-scratch seeds per subnet (--scratch-seeds): the runs of
each seed, the means the supernet is compared with, and the first two seeds compared with
each other (the reproducibility of the from-scratch ranking)."""

from __future__ import annotations

import json

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.rank_study import SUBNETS_FILE

from test_rank_study_recipe import RECIPE, _run

pytestmark = pytest.mark.usefixtures("one_thread")


def _records(output) -> list[dict]:
    return [json.loads(line) for line in (output / SUBNETS_FILE).read_text().splitlines()]


def _val(run_dir) -> dict:
    return json.loads((run_dir / "results.json").read_text())["val"]


def test_each_subnet_trains_with_every_seed_and_the_seeds_rank_each_other(supernet_run,
                                                                          tmp_path) -> None:
    pytest.importorskip("torch")
    from scipy import stats

    recipe, recipe_seed1 = tmp_path / "recipe.json", tmp_path / "recipe_seed1.json"
    recipe.write_text(json.dumps(RECIPE))
    recipe_seed1.write_text(json.dumps({**RECIPE, "seed": 1}))
    common = ["--supernet", supernet_run, "--num-subnets", "3", "--finetune-steps", "2",
              "--finetune-batch-size", "64", "--threads", "1", "--no-progress"]
    output, alone = tmp_path / "two_seeds", tmp_path / "seed1"
    argv = [*common, "--output", str(output), "--scratch-config", str(recipe),
            "--scratch-seeds", "2"]
    assert _run(argv) == 0
    assert _run([*common, "--output", str(alone), "--scratch-config", str(recipe_seed1)]) == 0

    records, seed1 = _records(output), _records(alone)
    for index, record in enumerate(records):
        first = output / "subnets" / f"{index:04d}"
        runs = [_val(first), _val(first / "repeat_1")]
        assert json.loads((first / "repeat_1" / "config.json").read_text())["config"][
            "seed"] == 1
        assert record["scratch_seeds"] == [0, 1]
        for metric in ("auc", "log_loss"):
            pair = [run[metric] for run in runs]
            assert record[f"scratch_{metric}_per_seed"] == pair
            assert record[f"scratch_{metric}"] == pytest.approx((pair[0] + pair[1]) / 2,
                                                                 abs=1e-15)
            # the second seed's run is the one a study with the recipe's seed 1 trains
            assert pair[1] == seed1[index][f"scratch_{metric}"]

    summary = json.loads((output / "rank_study.json").read_text())
    assert summary["scratch_training"]["seeds"] == 2
    for metric, suffix in (("log_loss", ""), ("auc", "_auc")):
        firsts = [record[f"scratch_{metric}_per_seed"][0] for record in records]
        seconds = [record[f"scratch_{metric}_per_seed"][1] for record in records]
        found = summary[f"reproducibility{suffix}"]
        assert found["n"] == 3
        assert found["kendall"] == pytest.approx(stats.kendalltau(firsts, seconds)[0],
                                                 abs=1e-12)
        means = [record[f"scratch_{metric}"] for record in records]
        supernet = [record[f"supernet_finetuned_{metric}"] for record in records]
        assert summary[f"finetuned{suffix}"]["pearson"] == pytest.approx(
            stats.pearsonr(supernet, means)[0], abs=1e-12)
    assert "reproducibility" not in json.loads((alone / "rank_study.json").read_text())

    # a study continued with another number of seeds is refused; --scratch-from reuses the
    # seeds of the study it reads (and its reproducibility), and trains none of its own
    with pytest.raises(NASRecError, match=r"subnet 0 was trained from scratch with 2 seed\(s\), "
                                          r"not --scratch-seeds 1"):
        _run(argv[:-2])
    reused = tmp_path / "reused"
    assert _run([*common, "--output", str(reused), "--scratch-from", str(output)]) == 0
    assert json.loads((reused / "rank_study.json").read_text())["reproducibility_auc"] == \
        summary["reproducibility_auc"]
    with pytest.raises(NASRecError, match=r"--scratch-seeds .* with --scratch-from"):
        _run([*common, "--output", str(tmp_path / "again"), "--scratch-from", str(output),
              "--scratch-seeds", "2"])
