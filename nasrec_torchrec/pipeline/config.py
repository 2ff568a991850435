"""Experiment configs: every stage's settings as dataclasses, loaded from `specs/experiments/`.

A YAML file holds any subset of the fields below (sections `prepare`, `supernet`, `search`,
`retrain`, `final`); the rest keep their defaults (the paper's hyper-parameters). Command-line
overrides are `section.field=value` strings (the value parsed as YAML). Unknown sections or
fields and values of the wrong type are errors naming the file and the field.

Example::

    config = load_experiment("specs/experiments/criteo-nasrec-small.yaml",
                             overrides=["supernet.max_steps=100", "retrain.top_k=3"])
    config.to_dict()  # the effective config, as written to pipeline.json
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

from nasrec_torchrec.data.choices import FORMATS
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.settings import SearchRun
from nasrec_torchrec.settings import check, from_mapping, option, same_as
from nasrec_torchrec.stages.baselines import BaselinesRun
from nasrec_torchrec.stages.data import PrepareRun, synth_shapes
from nasrec_torchrec.stages.final import FinalRun
from nasrec_torchrec.stages.retrain import RetrainRun
from nasrec_torchrec.stages.supernet import SupernetRun
from nasrec_torchrec.train.config import TrainConfig

@dataclass
class PrepareConfig:
    """Where the data comes from when `--data` is not a prepared dataset.

    Args:
        synth: make a synthetic dataset shaped like criteo, avazu or kdd (`nasrec synth`).
        rows: rows of the synthetic dataset.
        format: prepare raw logs of this format (`nasrec prepare --format`).
        inputs: raw input files (`SPLIT=PATH` with `split: given`); relative paths are
            relative to the config file.
        split: `nasrec prepare --split` (80,10,10; given; none).
        val_from_train: `nasrec prepare --val-from-train` (with `split: given`): the share of
            the train input carved out as val (1/9, 0.1, 11.11%), stratified, seeded by `seed`.
        args: further `nasrec prepare` flags, e.g. ["--label-column", "label"].
    """

    synth: Optional[str] = option(None, choices=synth_shapes)
    rows: int = option(100_000, minimum=1)
    format: Optional[str] = option(None, choices=FORMATS)
    inputs: list[str] = field(default_factory=list)
    split: str = "80,10,10"
    val_from_train: Optional[str] = same_as(PrepareRun, "val_from_train")
    args: list[str] = field(default_factory=list)


@dataclass
class TrainingSection:
    """The training settings every training stage's section has.

    Args:
        epochs, max_steps, batch_size, lr (dense and tables), lr_warmup_steps: the training
            (a stage much shorter than the default warm-up may want a shorter one).
        checkpoint_every: steps between checkpoints (what an interrupted run resumes from).
        args: further flags of the stage's command.
    """

    epochs: int = same_as(TrainConfig, "epochs")
    max_steps: Optional[int] = same_as(TrainConfig, "max_steps")
    batch_size: int = option(256, minimum=1)
    lr: float = same_as(TrainConfig, "learning_rate")
    lr_warmup_steps: int = same_as(TrainConfig, "lr_warmup_steps")
    checkpoint_every: Optional[int] = option(2000, minimum=0)
    args: list[str] = field(default_factory=list)


@dataclass
class SupernetConfig(TrainingSection):
    """`nasrec train-supernet` (paper: 1 epoch, Adagrad 0.04 cosine, batch 256, cap 500k,
    single-op any-connection paths, full-path warm-up over the first 1/4).

    Args:
        space: search space preset or space file. strategy: path sampling. path_warmup:
        warm-up fraction. embedding_cap: rows per table at most. layer_norm: LayerNorm in
        the operators. The rest: `TrainingSection`.
    """

    space: str = "nasrec-small"
    strategy: str = same_as(SupernetRun, "strategy")
    path_warmup: float = same_as(SupernetRun, "path_warmup")
    embedding_cap: int = same_as(TrainConfig, "embedding_cap")
    layer_norm: bool = True


@dataclass
class SearchStageConfig:
    """`nasrec search` (paper: regularized evolution, population 64, 100 iterations, sample
    32, 16 children; 500 head fine-tuning steps of 256 rows per candidate).

    Args:
        method: a search strategy (`SEARCH_STRATEGIES`: evolution, random). preset: paper or
            official evolution settings (`evolution.PRESETS`).
        budget: distinct candidates scored at most (required for random).
        generations, population, sample_size, children: override the preset.
        finetune, finetune_steps, finetune_batch_size, finetune_lr: candidate scoring.
        eval_rows: score on the first N validation rows only.
        max_mflops: FLOPs limit per sample.
        args: further `nasrec search` flags.
    """

    method: str = same_as(SearchRun, "method")
    preset: str = same_as(SearchRun, "preset")
    budget: Optional[int] = same_as(SearchRun, "budget")
    generations: Optional[int] = same_as(SearchRun, "generations")
    population: Optional[int] = same_as(SearchRun, "population")
    sample_size: Optional[int] = same_as(SearchRun, "sample_size")
    children: Optional[int] = same_as(SearchRun, "children")
    finetune: str = same_as(SearchRun, "finetune")
    finetune_steps: int = same_as(SearchRun, "finetune_steps")
    finetune_batch_size: int = same_as(SearchRun, "finetune_batch_size")
    finetune_lr: float = same_as(SearchRun, "finetune_lr")
    eval_rows: Optional[int] = same_as(SearchRun, "eval_rows")
    max_mflops: Optional[float] = same_as(SearchRun, "max_mflops")
    args: list[str] = field(default_factory=list)


@dataclass
class RetrainConfig(TrainingSection):
    """`nasrec retrain` (paper: top 15 from scratch with capped tables).

    Args:
        top_k: candidates retrained. embedding_cap: rows per table at most. The rest:
        `TrainingSection`; its `args` take `nasrec retrain`'s flags, the final recipe's
        early stopping per candidate and the selection included (e.g. [--patience, "2",
        --monitor, auc, --lr-plateau-factor, "0.1", --select, auto]).
    """

    top_k: int = same_as(RetrainRun, "top_k")
    embedding_cap: int = same_as(TrainConfig, "embedding_cap")


@dataclass
class FinalConfig(TrainingSection):
    """`nasrec final` (paper: full tables, train+val, 1 epoch).

    Args:
        protocol: paper or bars. patience: bars early stopping. lr_schedule: the rate's
        schedule. embedding_cap: None for full tables. repeats: seeds the final model and
        every baseline are trained with (the leaderboard compares their means). spread:
        under torchrun, those runs side by side, one per rank (`nasrec final --spread`).
        The rest: `TrainingSection`.
    """

    protocol: str = same_as(FinalRun, "protocol")
    repeats: int = same_as(FinalRun, "repeats")
    spread: bool = same_as(FinalRun, "spread")
    patience: int = option(2, minimum=1)
    lr_schedule: str = same_as(TrainConfig, "lr_schedule")
    embedding_cap: Optional[int] = option(None, minimum=2)


@dataclass
class BaselinesConfig:
    """The hand-made models trained exactly as the final model (its section's recipe), for
    the leaderboard.

    Args:
        models: baseline names (`nasrec train --model`); an empty list: no baselines stage.
        model_option: `MODEL:KEY=VALUE` options of a baseline (its structure).
        model_setting: `MODEL:FIELD=VALUE` training settings of one baseline (what its
            published recipe tunes per model); the rest is the final section's recipe.
    """

    models: list[str] = same_as(BaselinesRun, "models")
    model_option: list[str] = same_as(BaselinesRun, "model_option")
    model_setting: list[str] = same_as(BaselinesRun, "model_setting")


@dataclass
class ExperimentConfig:
    """One experiment: a dataset, a space, and every stage's settings.

    Args:
        name: the experiment's name (the report's title).
        description: free text.
        seed: seeds every stage.
        threads: intra-op threads (None: the machine's cores).
        device: auto, cpu or cuda.
        layer_norm: LayerNorm in the operators of the retrained and final models.
        progress: progress bars.
    """

    name: str = "experiment"
    description: str = ""
    seed: int = 0
    threads: Optional[int] = option(None, minimum=1)
    device: str = same_as(TrainConfig, "device")
    layer_norm: bool = True
    progress: bool = True
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    search: SearchStageConfig = field(default_factory=SearchStageConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def validate(self, source: str = "config") -> None:
        """Raise `NASRecError` naming the field whose value no stage accepts."""
        from nasrec_torchrec.space import load_space

        check(self, source, with_flags=False)
        if self.prepare.synth and self.prepare.format:
            raise NASRecError(f"{source}: field 'prepare.format': {self.prepare.format!r} "
                              "conflicts with prepare.synth")
        if self.prepare.format and not self.prepare.inputs:
            raise NASRecError(f"{source}: field 'prepare.inputs': [] is empty (prepare.format "
                              "is set)")
        if self.prepare.val_from_train is not None:
            self._check_val_from_train(source)
        from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES

        if SEARCH_STRATEGIES[self.search.method].needs_budget and not self.search.budget:
            raise NASRecError(f"{source}: field 'search.budget': {self.search.budget!r} is "
                              f"required by search method {self.search.method!r}")
        try:
            load_space(self.supernet.space)
        except NASRecError as error:
            raise NASRecError(f"{source}: field 'supernet.space': {error}") from None

    def _check_val_from_train(self, source: str) -> None:
        from nasrec_torchrec.data.split import carve_weights

        prepare = self.prepare
        where = f"{source}: field 'prepare.val_from_train'"
        if not prepare.format:
            raise NASRecError(f"{where}: applies to raw inputs (prepare.format and "
                              "prepare.inputs)")
        given = tuple(item.partition("=")[0] for item in prepare.inputs if "=" in item)
        try:
            carve_weights(prepare.val_from_train, prepare.split, given)
        except NASRecError as error:
            raise NASRecError(f"{where}: {error}") from None


def _set(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise NASRecError(f"{source}: '{key}': '{part}' is not a section")
    target[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`data` with `section.field=value` overrides applied (values parsed as YAML)."""
    import yaml

    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise NASRecError(f"--set {override!r}: expected SECTION.FIELD=VALUE")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            raise NASRecError(f"--set {override!r}: invalid value: {error}") from None
        _set(data, key.strip(), value, f"--set {override!r}")
    return data


def read_yaml(path: str) -> dict[str, Any]:
    """A YAML file's top-level mapping, with faults naming the file and line."""
    import yaml

    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise NASRecError(f"{path}: not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise NASRecError(f"{where}: invalid YAML: {getattr(error, 'problem', error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NASRecError(f"{path}: expected a mapping at the top level")
    return data


def _beside(base: str, file: str) -> str:
    """`file`, or the same relative path under `base` when only that one exists."""
    import os

    candidate = os.path.normpath(os.path.join(base, file))
    if not os.path.isabs(file) and not os.path.exists(file) and os.path.exists(candidate):
        return candidate
    return file


def load_experiment(path: Optional[str] = None, overrides: Sequence[str] = ()
                    ) -> ExperimentConfig:
    """The experiment in `path` (YAML; None for the defaults) with `overrides` applied.

    Relative `prepare.inputs` and `supernet.space` file paths are made relative to the config
    file's directory when they exist there.
    """
    import os

    data = read_yaml(path) if path else {}
    data = apply_overrides(data, overrides)
    source = path or "config"
    config = from_mapping(ExperimentConfig, data or {}, source)
    if path:
        base = os.path.dirname(os.path.abspath(path))
        resolved = []
        for item in config.prepare.inputs:
            split, sep, file = item.rpartition("=") if "=" in item else ("", "", item)
            resolved.append(f"{split}{sep}{_beside(base, file)}")
        config.prepare.inputs = resolved
        config.supernet.space = _beside(base, config.supernet.space)
    config.validate(source)
    return config
