"""`PipelineRun`: what `nasrec pipeline` takes, and `pipeline(run)`, which loads the
experiment with the run's overrides and runs (or continues) it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.stages import STAGES
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.stages.data import synth_shapes
from nasrec_torchrec.train.config import DEVICE_CHOICES


@dataclass
class PipelineRun:
    """A pipeline run: the output, the data, the experiment config and its overrides."""

    output: str = option("", "the pipeline's directory, one subdirectory per stage (required)",
                         metavar="DIR")
    data: Optional[str] = option(None, "prepared dataset (or where --synth / the config's "
                                 "prepare section writes it; default OUTPUT/data)",
                                 metavar="DIR")
    config: Optional[str] = option(None, "experiment config (specs/experiments/*.yaml)",
                                   metavar="FILE.yaml")
    set: list[str] = option(default_factory=list, help="override config fields, e.g. "
                            "supernet.max_steps=200 search.budget=30 (repeatable)",
                            metavar="SECTION.FIELD=VALUE")
    synth: Optional[str] = option(None, "make a synthetic dataset of this shape "
                                  "(prepare.synth)", choices=synth_shapes)
    rows: Optional[int] = option(None, "rows of the synthetic dataset (prepare.rows)",
                                 minimum=1)
    seed: Optional[int] = option(None, "seed of every stage")
    threads: Optional[int] = option(None, "intra-op threads", minimum=1)
    device: Optional[str] = option(None, "compute device", choices=DEVICE_CHOICES)
    stop_after: Optional[str] = option(None, "run the stages up to this one only",
                                       choices=STAGES)
    resume: bool = option(False, "accepted for launchers: the pipeline always continues an "
                          "earlier run in --output")
    progress: bool = option(True, "no progress bars", flag="--no-progress")

    def overrides(self) -> list[str]:
        """The `SECTION.FIELD=VALUE` overrides of the config: `set`, then the flags."""
        overrides = list(self.set)
        for name, value in (("prepare.synth", self.synth), ("prepare.rows", self.rows),
                            ("seed", self.seed), ("threads", self.threads),
                            ("device", self.device)):
            if value is not None:
                overrides.append(f"{name}={value}")
        if self.synth:
            overrides.append("prepare.format=null")
        if not self.progress:
            overrides.append("progress=false")
        return overrides


def pipeline(run: PipelineRun, source: str = "pipeline") -> dict[str, Any]:
    """Run (or continue) the experiment of `run`; the content of `pipeline.json`."""
    from nasrec_torchrec.pipeline.config import load_experiment
    from nasrec_torchrec.pipeline.stages import run_pipeline

    check(run, source)
    if not run.output:
        raise NASRecError(f"{source}: field 'output' (--output): is required")
    config = load_experiment(run.config, run.overrides())
    return run_pipeline(config, run.output, run.data, run.stop_after, run.config or "config")
