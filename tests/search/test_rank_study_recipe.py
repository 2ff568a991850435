"""Ranking study on a whole recipe (--scratch-config): each subnet trained by it, the
correlations on log loss and AUC, the recipe recorded and compared before any reuse."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.rank_study import SUBNETS_FILE, sample_subnets
from nasrec_torchrec.space import get_space

RECIPE = {"optimizer": "adam", "learning_rate": 0.01, "embedding_learning_rate": 0.01,
          "batch_size": 1024, "eval_batch_size": 1024, "lr_schedule": "constant",
          "embedding_cap": 500, "embedding_init_std": 0.0001, "clip_grad_norm": 0,
          "epochs": 3, "patience": 1, "monitor": "auc", "lr_plateau_factor": 0.1}
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parser() -> argparse.ArgumentParser:
    from nasrec_torchrec.commands import rank_study

    parser = argparse.ArgumentParser()
    rank_study.add_arguments(parser)
    return parser


def _run(argv: list[str]) -> int:
    from nasrec_torchrec.commands import rank_study

    return rank_study.run(_parser().parse_args(argv))


def test_shipped_bars_recipe_loads_and_checks(tmp_path) -> None:
    from nasrec_torchrec.stages.rank_study import RankStudyRun

    path = os.path.join(REPOSITORY, "specs", "recipes", "bars.json")
    recipe = RankStudyRun(supernet="s", output=str(tmp_path), scratch_config=path) \
        .scratch_recipe()
    assert (recipe.optimizer, recipe.batch_size, recipe.patience, recipe.embedding_cap,
            recipe.clip_grad_norm) == ("adam", 4096, 2, None, None)


def test_a_bad_scratch_config_names_the_file_and_field(tmp_path) -> None:
    from nasrec_torchrec.stages.rank_study import RankStudyRun

    path = tmp_path / "recipe.json"
    for content, message in (({"batch_size": 0}, r"field 'batch_size': 0 must be at least 1"),
                             ({"monitor": "loss"}, r"field 'monitor': 'loss' is not one of"),
                             ({"lr": 0.1}, r"unknown field 'lr'"),
                             ({"epochs": "many"}, r"field 'epochs': expected int")):
        path.write_text(json.dumps(content))
        run = RankStudyRun(supernet="s", output=str(tmp_path / "out"),
                           scratch_config=str(path))
        with pytest.raises(NASRecError, match=rf"recipe\.json: {message}"):
            run.scratch_recipe()


@pytest.mark.usefixtures("one_thread")
def test_rank_study_trains_each_subnet_with_the_recipe(supernet_run, tmp_path) -> None:
    pytest.importorskip("torch")
    from scipy import stats

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(RECIPE))
    output = tmp_path / "rank"
    argv = ["--supernet", supernet_run, "--output", str(output), "--num-subnets", "3",
            "--finetune-steps", "2", "--finetune-batch-size", "64", "--threads", "1",
            "--no-progress", "--scratch-config", str(recipe), "--scratch-batch-norm",
            "--scratch-dropout", "0.1"]
    assert _run(argv) == 0
    summary = json.loads((output / "rank_study.json").read_text())
    records = [json.loads(line) for line in (output / SUBNETS_FILE).read_text().splitlines()]
    for index, record in enumerate(records):
        run_dir = output / "subnets" / f"{index:04d}"
        config = json.loads((run_dir / "config.json").read_text())["config"]
        assert (config["optimizer"], config["batch_size"], config["patience"],
                config["monitor"], config["lr_plateau_factor"], config["embedding_init_std"],
                config["epochs"], config["clip_grad_norm"]) == (
            "adam", 1024, 1, "auc", 0.1, 0.0001, 3, None)
        assert (config["model"]["batch_norm"], config["model"]["dropout"]) == (True, 0.1)
        results = json.loads((run_dir / "results.json").read_text())
        assert record["scratch_log_loss"] == results["val"]["log_loss"]  # the best epoch's
        assert record["scratch_auc"] == results["val"]["auc"]
        assert record["scratch_best_epoch"] == results["best_epoch"]
        assert record["scratch_steps"] == results["steps"] <= 3 * 4  # 4800 rows / 1024
    assert summary["scratch_training"]["recipe"]["optimizer"] == "adam"
    assert summary["scratch_training"]["batch_norm"] is True
    assert "steps" not in summary["scratch_training"]  # the fixed budget's, not used
    assert summary["config"]["scratch_config"] == str(recipe)
    for kind in ("finetuned", "inherited"):
        for metric, suffix in (("log_loss", ""), ("auc", "_auc")):
            xs = [r[f"supernet_{kind}_{metric}"] for r in records]
            ys = [r[f"scratch_{metric}"] for r in records]
            found = summary[f"{kind}{suffix}"]
            assert found["n"] == 3
            assert found["kendall"] == pytest.approx(stats.kendalltau(xs, ys)[0], abs=1e-12)
            assert found["pearson"] == pytest.approx(stats.pearsonr(xs, ys)[0], abs=1e-12)

    # the finished runs are reused with this recipe only: a rerun trains nothing, a study
    # continued with another recipe is refused, naming the setting
    stamps = [os.path.getmtime(output / "subnets" / f"{i:04d}" / "results.json")
              for i in range(3)]
    assert _run(argv) == 0
    assert stamps == [os.path.getmtime(output / "subnets" / f"{i:04d}" / "results.json")
                      for i in range(3)]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**RECIPE, "learning_rate": 0.02}))
    changed = [*argv[:argv.index("--scratch-config")], "--scratch-config", str(other),
               "--scratch-batch-norm", "--scratch-dropout", "0.1"]
    changed[changed.index("3")] = "4"  # one more subnet
    with pytest.raises(NASRecError, match=r"subnet 0: trained from scratch with other "
                       r"settings .*learning_rate \(--lr\): 0\.01 -> 0\.02"):
        _run(changed)
    # --scratch-from with a recipe: the earlier study's runs must have been trained with it
    reused = tmp_path / "reused"
    common = [*argv[:argv.index("--output")], "--output", str(reused),
              *argv[argv.index("--num-subnets"):]]
    assert _run([*common, "--scratch-from", str(output)]) == 0
    assert json.loads((reused / "rank_study.json").read_text())["finetuned_auc"] == \
        summary["finetuned_auc"]
    with pytest.raises(NASRecError, match=r"--scratch-from .*subnet 0: trained from scratch "
                       r"with other settings .*model\.dropout: 0\.1 -> 0\.2"):
        _run([*common[:-1], "0.2", "--output", str(tmp_path / "again"), "--scratch-from",
              str(output)])


def test_finished_run_is_compared_on_the_whole_recipe(tmp_path) -> None:
    from nasrec_torchrec.search.scratch import (
        ScratchTraining, finished_scratch_run, scratch_config)
    from nasrec_torchrec.train.config import TrainConfig

    architecture, = sample_subnets(get_space("nasrec-small"), 1, seed=3)
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    run.mkdir()
    settings = ScratchTraining(recipe=TrainConfig.from_dict(RECIPE), batch_norm=True)
    config = scratch_config(architecture, str(data), str(run), settings)
    results = {"steps": 8, "train_seconds": 1.0, "val": {"log_loss": 0.4, "auc": 0.7},
               "best_epoch": 2, "config": config.to_dict()}
    (run / "results.json").write_text(json.dumps(results))
    results = json.loads((run / "results.json").read_text())
    assert finished_scratch_run(architecture, str(data), str(run), settings) == results
    for change in ({"embedding_weight_decay": 0.05}, {"patience": 2}, {"monitor": "log_loss"},
                   {"embedding_init_std": None}, {"epochs": 4}, {"embedding_cap": None},
                   {"optimizer": "adagrad"}, {"seed": 1}):
        other = ScratchTraining(recipe=TrainConfig.from_dict({**RECIPE, **change}),
                                batch_norm=True)
        assert finished_scratch_run(architecture, str(data), str(run), other) is None, change
    for change in ({"batch_norm": False}, {"dropout": 0.1}, {"recipe": None}):
        other = ScratchTraining(**{"recipe": settings.recipe, "batch_norm": True, **change})
        assert finished_scratch_run(architecture, str(data), str(run), other) is None, change
