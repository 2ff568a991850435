"""Stage `baselines`: the hand-made models (DLRM, DeepFM, DCNv2 by default) trained as the
final model is (the same `TrainConfig`: recipe, protocol, data, full tables), each in
`OUTPUT/<model>/`, so the found model has a leaderboard. A finished baseline is reused.

A baseline may take its own model options (`deepfm:dropout=0.2`: its structure) and its own
training settings (`dlrm:embedding_weight_decay=0.1`: what its published recipe tunes per
model); everything else is the final model's. With `repeats` N > 1 each baseline is trained
with N seeds, as the final model is (`stages/final.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.settings import check, option, same_as
from nasrec_torchrec.stages.final import (
    FinalRun, finished_results, run_final, seed_jobs, train_repeats)
from nasrec_torchrec.stages.side_by_side import FinalJob, train_side_by_side
from nasrec_torchrec.train.config import TrainConfig

logger = logging.getLogger(__name__)

DEFAULT_BASELINES = ("dlrm", "deepfm", "dcnv2")


@dataclass
class BaselinesRun:
    """The baselines' runs: which models, and the final model's protocol and training."""

    models: list[str] = option(default_factory=lambda: list(DEFAULT_BASELINES),
                               help="hand-made models trained by the final recipe (names of "
                               "`nasrec train --model`)", metavar="MODEL")
    model_option: list[str] = option(default_factory=list, help="a baseline's option "
                                     "(repeatable), e.g. deepfm:dropout=0.2",
                                     metavar="MODEL:KEY=VALUE")
    model_setting: list[str] = option(default_factory=list, help="a training setting of one "
                                      "baseline (repeatable), e.g. "
                                      "dlrm:embedding_weight_decay=0.1",
                                      metavar="MODEL:FIELD=VALUE")
    protocol: str = same_as(FinalRun, "protocol")
    repeats: int = same_as(FinalRun, "repeats")
    spread: bool = option(False, "under torchrun: train the runs (every baseline and seed) side "
                          "by side, each on one rank in a one-rank process (as a lone process "
                          "trains it), instead of one after the other sharded over every "
                          "rank; for tables that fit one rank")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(embedding_cap=None))

    def plans(self, source: str) -> dict[str, tuple[list[str], dict[str, Any]]]:
        """Model -> (its options, its settings), every item checked (`source` names it)."""
        check_models(self.models, f"{source}: field 'models' (--models)")
        for model, _ in _split(self.model_option, "model_option", source) + _split(
                self.model_setting, "model_setting", source):
            if model not in self.models:
                raise NASRecError(f"{source}: {model!r} has options or settings but is not "
                                  "one of the models")
        return {model: self.per_model(model, source) for model in self.models}

    def per_model(self, model: str, source: str) -> tuple[list[str], dict[str, Any]]:
        """(its `KEY=VALUE` options, its typed `TrainConfig` settings) of baseline `model`."""
        options = [value for name, value in _split(self.model_option, "model_option", source)
                   if name == model]
        settings: dict[str, Any] = {}
        for name, text in _split(self.model_setting, "model_setting", source):
            key, _, value = text.partition("=")
            if name == model:
                settings[key] = _typed_setting(key, value, f"{source}: field 'model_setting'")
        return options, settings


def baseline_dir(output: str, model: str) -> str:
    """The run directory of baseline `model`."""
    return os.path.join(output, model)


def baselines_done(output: str, models: list[str], repeats: int = 1) -> bool:
    """Whether every baseline of `models` has finished in `output`, with `repeats` seeds."""
    from nasrec_torchrec.stages.final import final_done

    return all(final_done(baseline_dir(output, model), repeats) for model in models)


def check_models(models: list[str], where: str) -> None:
    """Raise `NASRecError` naming `where` for a name that is not a registered baseline (the
    registry imports torch: checked when a run is planned, not when a config is read)."""
    from nasrec_torchrec.baselines import BASELINES, baseline_entry

    for model in models:
        try:
            baseline_entry(model)
        except NASRecError:
            raise NASRecError(f"{where}: {model!r} is not one of "
                              f"{', '.join(sorted(BASELINES))}") from None


def _split(items: list[str], name: str, source: str) -> list[tuple[str, str]]:
    """`MODEL:KEY=VALUE` items as (model, "KEY=VALUE")."""
    pairs = []
    for item in items:
        model, colon, rest = item.partition(":")
        if not colon or "=" not in rest or not model:
            raise NASRecError(f"{source}: field '{name}': {item!r} is not MODEL:KEY=VALUE")
        pairs.append((model.strip(), rest.strip()))
    return pairs


def _typed_setting(key: str, value: str, where: str) -> Any:
    """The `TrainConfig` field `key` read from `value` (YAML), typed and checked."""
    import yaml

    from nasrec_torchrec.settings import from_mapping

    if key not in TrainConfig.__dataclass_fields__ or key in ("data", "output", "model"):
        raise NASRecError(f"{where}: {key!r} is not a training setting of a baseline")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise NASRecError(f"{where}: {key}={value!r} is not a value") from None
    config = from_mapping(TrainConfig, {key: parsed}, where)
    check(config, where)
    return getattr(config, key)


def train_baselines(run: BaselinesRun, source: str = "baselines") -> dict[str, Any]:
    """Train (or reuse) every baseline of `run`; model -> its final `results.json` content."""
    runs = _model_runs(run, source)
    from nasrec_torchrec.train.ranks import job_group  # torch: imported when a run starts

    with job_group(run.train.threads, run.train.device):  # one group for every run
        return _train_baselines(run, runs)


def baseline_jobs(run: BaselinesRun, source: str = "baselines") -> list[FinalJob]:
    """Every run of `run` (checked; `source` names it in errors), model by model and seed by
    seed: a model's first seed in `<output>/<model>/`, the others in its `repeat_<i>/`."""
    return _jobs(run, _model_runs(run, source))


def _model_runs(run: BaselinesRun, source: str) -> dict[str, tuple[TrainConfig, ModelSpec]]:
    """Model -> (its first seed's `TrainConfig`, its `ModelSpec`), `run` checked."""
    check(run, source)
    plans = run.plans(source)
    config = run.train
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --data and --output are required")
    return {model: (dataclasses.replace(config, output=baseline_dir(config.output, model),
                                        resume=True, **plans[model][1]),
                    ModelSpec.for_baseline(model, plans[model][0])) for model in run.models}


def _jobs(run: BaselinesRun, runs: dict[str, tuple[TrainConfig, ModelSpec]]
          ) -> list[FinalJob]:
    return [job for model_config, spec in runs.values()
            for job in seed_jobs(model_config, spec, run.protocol, run.repeats)]


def _train_baselines(run: BaselinesRun, runs: dict[str, tuple[TrainConfig, ModelSpec]]
                     ) -> dict[str, Any]:
    if run.spread:
        train_side_by_side(_jobs(run, runs))
    results: dict[str, Any] = {}
    for model, (model_config, spec) in runs.items():
        output = model_config.output
        finished = finished_results(model_config, spec, run.protocol,
                                    f"baseline {model} finished",
                                    "remove it or choose another --output")
        if finished is not None:
            logger.info("baseline %s: done earlier (%s), reused", model, output)
        else:
            logger.info("baseline %s -> %s", model, output)
            finished = run_final(model_config, spec, run.protocol)
        results[model] = train_repeats(model_config, spec, run.protocol, run.repeats, finished,
                                       f"baseline {model}")
    return results
