"""The settings of the search stage as typed dataclasses: `SearchRun` (what `nasrec search`
takes) over `ScoringRun` (the supernet, the data and the candidate scoring, shared with the
ranking study).

Every field is declared with `settings.option`: its flag (same name, dashes for
underscores), help, choices (a registry) and bounds; the commands derive their flags from
them. Plain Python (no torch).

Example::

    run = SearchRun(supernet="runs/supernet", output="runs/search", method="random",
                    budget=500, max_mflops=2.0)
    run.validate()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.evolution import PRESETS
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.train.config import OPTIMIZER_CHOICES

FINETUNE_MODES = ("head", "none", "full")
"""How a candidate is scored (`SubnetScorer.finetune`): fine-tune the final FC only, nothing,
or every dense weight of the subnet."""

FINETUNE_OPTIMIZERS = ("auto",) + OPTIMIZER_CHOICES
"""The fine-tuning's optimizer: auto (the supernet run's `TrainConfig.optimizer`) or one of
the training optimizers."""


@dataclass
class ScoringRun:
    """The supernet scored from, the data, where results go, and how candidates are scored
    (each field's help: its flag's)."""

    supernet: str = option("", "a `nasrec train-supernet` run directory (required)",
                           metavar="DIR", path=True)
    data: Optional[str] = option(None, "prepared dataset (default: the one the supernet "
                                 "trained on)", metavar="DIR", path=True)
    output: str = option("", "where results go (required)", metavar="DIR",
                         fixed_on_resume=False)
    checkpoint: Optional[str] = option(None, "a step_* checkpoint of the supernet (default: "
                                       "the latest)", metavar="DIR", path=True)
    finetune_steps: int = option(500, "head fine-tuning steps per candidate", minimum=0)
    finetune_batch_size: int = option(256, "rows per fine-tuning step", minimum=1)
    finetune_lr: float = option(0.04, "learning rate of the fine-tuning (cosine)", above=0.0)
    finetune_optimizer: str = option("auto", "optimizer of the fine-tuning: auto (the "
                                     "supernet's --optimizer, with its betas), adagrad or adam",
                                     choices=FINETUNE_OPTIMIZERS)
    recalibration_batches: int = option(
        10, "with a BatchNorm supernet (train-supernet --batch-norm): each subnet's BatchNorm "
        "statistics are re-estimated on the first N fine-tuning batches (the same rows for "
        "every candidate) before its fine-tune and its evaluation", minimum=1, metavar="N")
    eval_batch_size: int = option(4096, "rows per evaluation batch", minimum=1)
    eval_rows: Optional[int] = option(None, "score on the first N validation rows only "
                                      "(default: all)", minimum=1, metavar="N")
    eval_split: str = option("val", "split scored")
    seed: int = option(0, "seed of the search and of the fine-tuning data order")
    threads: Optional[int] = option(None, "intra-op threads (default: OMP_NUM_THREADS or the "
                                    "cores; on a busy machine 1 is often fastest)", minimum=1,
                                    fixed_on_resume=False)
    progress: bool = option(True, "no progress bar", flag="--no-progress",
                            fixed_on_resume=False)

    def validate(self, source: str = "search") -> None:
        """Raise `NASRecError` naming the field whose value is missing or not admitted."""
        check(self, source)
        for name in ("supernet", "output"):
            if not getattr(self, name):
                raise NASRecError(f"{source}: field '{name}' (--{name}): is required")


@dataclass
class SearchRun(ScoringRun):
    """`nasrec search`: the strategy, its budget and settings, the FLOPs limit, the scoring
    mode, and whether an earlier search in `output` is continued or replaced."""

    method: str = option("evolution", "search strategy", choices=lambda: list(SEARCH_STRATEGIES))
    preset: str = option("paper", "evolution settings: paper (population 64, sample 32, 16 "
                         "children, 100 generations) or official (128 / 64 / 8 / 240)",
                         choices=lambda: list(PRESETS))
    budget: Optional[int] = option(None, "distinct candidates scored at most (random search: "
                                   "required; may be raised to continue a search)", minimum=1,
                                   metavar="N", fixed_on_resume=False)
    generations: Optional[int] = option(None, "override the preset's generations (may be "
                                        "raised to continue a search)", minimum=1,
                                        fixed_on_resume=False)
    population: Optional[int] = option(None, "override the population size", minimum=1)
    sample_size: Optional[int] = option(None, "override the parent sample size", minimum=1)
    children: Optional[int] = option(None, "override the children per generation", minimum=1)
    max_mflops: Optional[float] = option(None, "reject candidates above this many MFLOPs per "
                                         "sample (fvcore)", above=0.0, metavar="MFLOPS")
    finetune: str = option("head", "scoring: fine-tune the final FC, nothing, or every dense "
                           "weight of the subnet", choices=FINETUNE_MODES)
    resume: bool = option(False, "continue the search saved in --output (with the same "
                          "settings)", fixed_on_resume=False)
    overwrite: bool = option(False, "replace an earlier search in --output",
                             fixed_on_resume=False)

    def validate(self, source: str = "search") -> None:
        """`ScoringRun.validate`, and a budget for the strategies that need one."""
        super().validate(source)
        if SEARCH_STRATEGIES[self.method].needs_budget and not self.budget:
            raise NASRecError(f"{source}: --method {self.method} needs --budget N")
