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
from typing import Any, Callable, Mapping, Optional, Sequence

from nasrec_torchrec.data.choices import FORMATS
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, from_mapping, option

def _registry(module: str, name: str) -> Callable[[], list[str]]:
    """Choices read from a registry when a value is checked (its module may import torch)."""
    def names() -> list[str]:
        import importlib

        return sorted(getattr(importlib.import_module(f"nasrec_torchrec.{module}"), name))
    return names


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
        args: further `nasrec prepare` flags, e.g. ["--label-column", "label"].
    """

    synth: Optional[str] = option(None, choices=_registry("data.synthetic", "SHAPES"))
    rows: int = option(100_000, minimum=1)
    format: Optional[str] = option(None, choices=FORMATS)
    inputs: list[str] = field(default_factory=list)
    split: str = "80,10,10"
    args: list[str] = field(default_factory=list)


@dataclass
class SupernetConfig:
    """`nasrec train-supernet` (paper: 1 epoch, Adagrad 0.04 cosine, batch 256, cap 500k,
    single-op any-connection paths, full-path warm-up over the first 1/4).

    Args:
        space: search space preset or space file. strategy: path sampling. path_warmup:
        warm-up fraction. epochs, max_steps, batch_size, lr (dense and tables),
        embedding_cap: training settings. checkpoint_every: steps between checkpoints (what
        an interrupted run resumes from). layer_norm: LayerNorm in the operators.
        args: further `nasrec train-supernet` flags.
    """

    space: str = "nasrec-small"
    strategy: str = option("single_op_any_conn", choices=_registry("space", "STRATEGIES"))
    path_warmup: float = option(0.25, minimum=0.0, below=1.0)
    epochs: int = option(1, minimum=1)
    max_steps: Optional[int] = option(None, minimum=1)
    batch_size: int = option(256, minimum=1)
    lr: float = option(0.04, above=0.0)
    embedding_cap: int = option(500_000, minimum=2)
    checkpoint_every: Optional[int] = option(2000, minimum=0)
    layer_norm: bool = True
    args: list[str] = field(default_factory=list)


@dataclass
class SearchStageConfig:
    """`nasrec search` (paper: regularized evolution, population 64, 100 iterations, sample
    32, 16 children; 500 head fine-tuning steps of 256 rows per candidate).

    Args:
        method: evolution or random. preset: paper or official evolution settings.
        budget: distinct candidates scored at most (required for random).
        generations, population, sample_size, children: override the preset.
        finetune, finetune_steps, finetune_batch_size, finetune_lr: candidate scoring.
        eval_rows: score on the first N validation rows only.
        max_mflops: FLOPs limit per sample.
        args: further `nasrec search` flags.
    """

    method: str = option("evolution", choices=("evolution", "random"))
    preset: str = option("paper", choices=("paper", "official"))
    budget: Optional[int] = option(None, minimum=1)
    generations: Optional[int] = option(None, minimum=1)
    population: Optional[int] = option(None, minimum=1)
    sample_size: Optional[int] = option(None, minimum=1)
    children: Optional[int] = option(None, minimum=1)
    finetune: str = option("head", choices=("head", "none", "full"))
    finetune_steps: int = option(500, minimum=0)
    finetune_batch_size: int = option(256, minimum=1)
    finetune_lr: float = option(0.04, above=0.0)
    eval_rows: Optional[int] = option(None, minimum=1)
    max_mflops: Optional[float] = option(None, above=0.0)
    args: list[str] = field(default_factory=list)


@dataclass
class RetrainConfig:
    """`nasrec retrain` (paper: top 15 from scratch with capped tables).

    Args:
        top_k: candidates retrained. epochs, max_steps, batch_size, lr, embedding_cap: their
        training. checkpoint_every: steps between checkpoints. args: further flags.
    """

    top_k: int = option(15, minimum=1)
    epochs: int = option(1, minimum=1)
    max_steps: Optional[int] = option(None, minimum=1)
    batch_size: int = option(256, minimum=1)
    lr: float = option(0.04, above=0.0)
    embedding_cap: int = option(500_000, minimum=2)
    checkpoint_every: Optional[int] = option(2000, minimum=0)
    args: list[str] = field(default_factory=list)


@dataclass
class FinalConfig:
    """`nasrec final` (paper: full tables, train+val, 1 epoch).

    Args:
        protocol: paper or bars. patience: bars early stopping.
        epochs, max_steps, batch_size, lr, lr_schedule: training.
        embedding_cap: None for full tables. checkpoint_every: steps between checkpoints.
        args: further `nasrec final` flags.
    """

    protocol: str = option("paper", choices=("paper", "bars"))
    patience: int = option(2, minimum=1)
    epochs: int = option(1, minimum=1)
    max_steps: Optional[int] = option(None, minimum=1)
    batch_size: int = option(256, minimum=1)
    lr: float = option(0.04, above=0.0)
    lr_schedule: str = option("cosine", choices=_registry("train.schedules", "LR_SCHEDULES"))
    embedding_cap: Optional[int] = option(None, minimum=2)
    checkpoint_every: Optional[int] = option(2000, minimum=0)
    args: list[str] = field(default_factory=list)


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
    device: str = option("auto", choices=_registry("train.distributed", "DEVICE_CHOICES"))
    layer_norm: bool = True
    progress: bool = True
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    search: SearchStageConfig = field(default_factory=SearchStageConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    final: FinalConfig = field(default_factory=FinalConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def validate(self, source: str = "config") -> None:
        """Raise `NASRecError` naming the field whose value no stage accepts."""
        from nasrec_torchrec.space import load_space

        check(self, source)
        if self.prepare.synth and self.prepare.format:
            raise NASRecError(f"{source}: field 'prepare.format': {self.prepare.format!r} "
                              "conflicts with prepare.synth")
        if self.prepare.format and not self.prepare.inputs:
            raise NASRecError(f"{source}: field 'prepare.inputs': [] is empty (prepare.format "
                              "is set)")
        if self.search.method == "random" and not self.search.budget:
            raise NASRecError(f"{source}: field 'search.budget': {self.search.budget!r} is "
                              "required by random search")
        try:
            load_space(self.supernet.space)
        except NASRecError as error:
            raise NASRecError(f"{source}: field 'supernet.space': {error}") from None


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
