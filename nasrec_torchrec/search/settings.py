"""The settings of the search stage as typed dataclasses: `SearchRun` (what `nasrec search`
takes) over `ScoringRun` (the supernet, the data and the candidate scoring, shared with the
ranking study).

Every field is one flag of the command (same name, dashes for underscores); its metadata
holds the flag's help text, its `choices` (a tuple or a registry) and, where the flag has
them, `metavar` and `required`. Plain Python (no torch).

Example::

    run = SearchRun(supernet="runs/supernet", output="runs/search", method="random",
                    budget=500, max_mflops=2.0)
    run.validate()
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional, TypeVar

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.evolution import PRESETS
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES

FINETUNE_MODES = ("head", "none", "full")
"""How a candidate is scored (`SubnetScorer.finetune`): fine-tune the final FC only, nothing,
or every dense weight of the subnet."""

Settings = TypeVar("Settings", bound="ScoringRun")


@dataclass
class ScoringRun:
    """The supernet scored from, the data, where results go, and how candidates are scored.

    Fields: see each field's `metadata["help"]` (the command-line help).
    """

    supernet: str = field(default="", metadata={
        "help": "a `nasrec train-supernet` run directory", "metavar": "DIR", "required": True})
    data: Optional[str] = field(default=None, metadata={
        "help": "prepared dataset (default: the one the supernet trained on)", "metavar": "DIR"})
    output: str = field(default="", metadata={
        "help": "where results go", "metavar": "DIR", "required": True})
    checkpoint: Optional[str] = field(default=None, metadata={
        "help": "a step_* checkpoint of the supernet (default: the latest)", "metavar": "DIR"})
    finetune_steps: int = field(default=500, metadata={
        "help": "head fine-tuning steps per candidate (default 500)"})
    finetune_batch_size: int = field(default=256, metadata={
        "help": "rows per fine-tuning step (default 256)"})
    finetune_lr: float = field(default=0.04, metadata={
        "help": "Adagrad learning rate of the fine-tuning (default 0.04, cosine)"})
    eval_batch_size: int = field(default=4096, metadata={
        "help": "rows per evaluation batch (default 4096)"})
    eval_rows: Optional[int] = field(default=None, metadata={
        "help": "score on the first N validation rows only (default: all)"})
    eval_split: str = field(default="val", metadata={"help": "split scored (default val)"})
    seed: int = field(default=0, metadata={
        "help": "seed of the search and of the fine-tuning data order"})
    threads: Optional[int] = field(default=None, metadata={
        "help": "intra-op threads (default: OMP_NUM_THREADS or the cores; on a busy machine 1 "
                "is often fastest)"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bar"})

    @classmethod
    def from_values(cls: type[Settings], values: Mapping[str, Any]) -> Settings:
        """The settings among `values` (e.g. `vars(args)`); other keys are ignored."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def validate(self) -> None:
        """Raise `NASRecError` naming the field whose value is missing or not a choice."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.metadata.get("required") and not value:
                raise NASRecError(f"{type(self).__name__}: field '{spec.name}' is required")
            choices = spec.metadata.get("choices")
            if choices is not None and value not in choices:
                raise NASRecError(f"{type(self).__name__}: field '{spec.name}': {value!r} is "
                                  f"not one of {list(choices)}")


@dataclass
class SearchRun(ScoringRun):
    """`nasrec search`: the strategy, its budget and settings, the FLOPs limit, the scoring
    mode, and whether an earlier search in `output` is continued or replaced.

    Fields: those of `ScoringRun`, then the ones below (help: each field's metadata).
    """

    method: str = field(default="evolution", metadata={
        "help": "search strategy (default evolution)", "choices": SEARCH_STRATEGIES})
    preset: str = field(default="paper", metadata={
        "help": "evolution settings: paper (population 64, sample 32, 16 children, 100 "
                "generations) or official (128 / 64 / 8 / 240)", "choices": PRESETS})
    budget: Optional[int] = field(default=None, metadata={
        "help": "distinct candidates scored at most (random search: required)"})
    generations: Optional[int] = field(default=None, metadata={
        "help": "override the preset's generations"})
    population: Optional[int] = field(default=None, metadata={
        "help": "override the population size"})
    sample_size: Optional[int] = field(default=None, metadata={
        "help": "override the parent sample size"})
    children: Optional[int] = field(default=None, metadata={
        "help": "override the children per generation"})
    max_mflops: Optional[float] = field(default=None, metadata={
        "help": "reject candidates above this many MFLOPs per sample (fvcore)"})
    finetune: str = field(default="head", metadata={
        "help": "scoring: fine-tune the final FC (default), nothing, or every dense weight of "
                "the subnet", "choices": FINETUNE_MODES})
    resume: bool = field(default=False, metadata={
        "help": "continue the search saved in --output"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace an earlier search in --output"})

    def validate(self) -> None:
        """`ScoringRun.validate`, and a budget for the strategies that need one."""
        if self.method in SEARCH_STRATEGIES and SEARCH_STRATEGIES[self.method].needs_budget \
                and not self.budget:
            raise NASRecError(f"search: --method {self.method} needs --budget N")
        super().validate()
