"""Stage `baselines`: the hand-made models (DLRM, DeepFM, DCNv2 by default) trained exactly as
the final model is (the same `TrainConfig`: recipe, protocol, data, full tables), each in
`OUTPUT/<model>/`, so the found model has a leaderboard. A finished baseline is reused."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.settings import check, option, same_as
from nasrec_torchrec.stages.final import FinalRun, existing_results, run_final
from nasrec_torchrec.train.config import TrainConfig

logger = logging.getLogger(__name__)

DEFAULT_BASELINES = ("dlrm", "deepfm", "dcnv2")


@dataclass
class BaselinesRun:
    """The baselines' runs: which models, and the final model's protocol and training."""

    models: list[str] = option(default_factory=lambda: list(DEFAULT_BASELINES),
                               help="hand-made models trained by the final recipe (names of "
                               "`nasrec train --model`)", metavar="MODEL")
    protocol: str = same_as(FinalRun, "protocol")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(embedding_cap=None))


def baseline_dir(output: str, model: str) -> str:
    """The run directory of baseline `model`."""
    return os.path.join(output, model)


def baselines_done(output: str, models: list[str]) -> bool:
    """Whether every baseline of `models` has finished in `output`."""
    from nasrec_torchrec.stages.final import final_done

    return all(final_done(baseline_dir(output, model)) for model in models)


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


def train_baselines(run: BaselinesRun, source: str = "baselines") -> dict[str, Any]:
    """Train (or reuse) every baseline of `run`; model -> its final `results.json` content."""
    check(run, source)
    check_models(run.models, f"{source}: field 'models' (--models)")
    config = run.train
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --data and --output are required")
    results: dict[str, Any] = {}
    for model in run.models:
        output = baseline_dir(config.output, model)
        finished = existing_results(output)
        if finished is not None:
            logger.info("baseline %s: done earlier (%s), reused", model, output)
        else:
            logger.info("baseline %s -> %s", model, output)
            finished = run_final(dataclasses.replace(config, output=output, resume=True),
                                 ModelSpec.for_baseline(model, []), run.protocol)
        results[model] = finished
    return results
