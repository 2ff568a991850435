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

import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Mapping, Optional, Sequence

from nasrec_torchrec.errors import NASRecError

SYNTH_SHAPES = ("criteo", "avazu", "kdd")


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

    synth: Optional[str] = None
    rows: int = 100_000
    format: Optional[str] = None
    inputs: list[str] = field(default_factory=list)
    split: str = "80,10,10"
    args: list[str] = field(default_factory=list)


@dataclass
class SupernetConfig:
    """`nasrec train-supernet` (paper: 1 epoch, Adagrad 0.04 cosine, batch 256, cap 500k,
    single-op any-connection paths, full-path warm-up over the first 1/4).

    Args:
        space: search space preset. strategy: path sampling. path_warmup: warm-up fraction.
        epochs, max_steps, batch_size, lr, embedding_cap: training settings.
        checkpoint_every: steps between checkpoints (what an interrupted run resumes from).
        layer_norm: LayerNorm in the operators.
        args: further `nasrec train-supernet` flags.
    """

    space: str = "nasrec-small"
    strategy: str = "single_op_any_conn"
    path_warmup: float = 0.25
    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 256
    lr: float = 0.04
    embedding_cap: int = 500_000
    checkpoint_every: Optional[int] = 2000
    layer_norm: bool = True
    args: list[str] = field(default_factory=list)


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

    method: str = "evolution"
    preset: str = "paper"
    budget: Optional[int] = None
    generations: Optional[int] = None
    population: Optional[int] = None
    sample_size: Optional[int] = None
    children: Optional[int] = None
    finetune: str = "head"
    finetune_steps: int = 500
    finetune_batch_size: int = 256
    finetune_lr: float = 0.04
    eval_rows: Optional[int] = None
    max_mflops: Optional[float] = None
    args: list[str] = field(default_factory=list)


@dataclass
class RetrainConfig:
    """`nasrec retrain` (paper: top 15 from scratch with capped tables).

    Args:
        top_k: candidates retrained. epochs, max_steps, batch_size, lr, embedding_cap: their
        training. checkpoint_every: steps between checkpoints. args: further flags.
    """

    top_k: int = 15
    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 256
    lr: float = 0.04
    embedding_cap: int = 500_000
    checkpoint_every: Optional[int] = 2000
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

    protocol: str = "paper"
    patience: int = 2
    epochs: int = 1
    max_steps: Optional[int] = None
    batch_size: int = 256
    lr: float = 0.04
    lr_schedule: str = "cosine"
    embedding_cap: Optional[int] = None
    checkpoint_every: Optional[int] = 2000
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
    threads: Optional[int] = None
    device: str = "auto"
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
        def bad(name: str, value: Any, why: str) -> NASRecError:
            return NASRecError(f"{source}: field '{name}': {value!r} {why}")

        from nasrec_torchrec.search.evolution import PRESETS
        from nasrec_torchrec.search.settings import FINETUNE_MODES
        from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES
        from nasrec_torchrec.space import STRATEGIES, SPACES

        if self.prepare.synth is not None and self.prepare.synth not in SYNTH_SHAPES:
            raise bad("prepare.synth", self.prepare.synth, f"is not one of {list(SYNTH_SHAPES)}")
        if self.prepare.synth and self.prepare.format:
            raise bad("prepare.format", self.prepare.format, "conflicts with prepare.synth")
        if self.prepare.format and not self.prepare.inputs:
            raise bad("prepare.inputs", self.prepare.inputs, "is empty (prepare.format is set)")
        if self.supernet.space not in SPACES:
            raise bad("supernet.space", self.supernet.space, f"is not one of {sorted(SPACES)}")
        if self.supernet.strategy not in STRATEGIES:
            raise bad("supernet.strategy", self.supernet.strategy,
                      f"is not one of {sorted(STRATEGIES)}")
        if not 0.0 <= self.supernet.path_warmup < 1.0:
            raise bad("supernet.path_warmup", self.supernet.path_warmup, "is not in [0, 1)")
        if self.search.method not in SEARCH_STRATEGIES:
            raise bad("search.method", self.search.method,
                      f"is not one of {sorted(SEARCH_STRATEGIES)}")
        if SEARCH_STRATEGIES[self.search.method].needs_budget and not self.search.budget:
            raise bad("search.budget", self.search.budget,
                      f"is required by {self.search.method} search")
        if self.search.preset not in PRESETS:
            raise bad("search.preset", self.search.preset, f"is not one of {sorted(PRESETS)}")
        if self.search.finetune not in FINETUNE_MODES:
            raise bad("search.finetune", self.search.finetune,
                      f"is not one of {list(FINETUNE_MODES)}")
        if self.final.protocol not in ("paper", "bars"):
            raise bad("final.protocol", self.final.protocol, "is not paper or bars")
        if self.final.lr_schedule not in ("cosine", "constant"):
            raise bad("final.lr_schedule", self.final.lr_schedule, "is not cosine or constant")
        if self.device not in ("auto", "cpu", "cuda"):
            raise bad("device", self.device, "is not auto, cpu or cuda")
        for section, name in (("supernet", "epochs"), ("supernet", "batch_size"),
                              ("retrain", "top_k"), ("retrain", "epochs"),
                              ("retrain", "batch_size"), ("final", "epochs"),
                              ("final", "batch_size"), ("final", "patience"),
                              ("search", "finetune_batch_size"), ("prepare", "rows")):
            value = getattr(getattr(self, section), name)
            if value < 1:
                raise bad(f"{section}.{name}", value, "must be at least 1")
        for section, name in (("supernet", "max_steps"), ("retrain", "max_steps"),
                              ("final", "max_steps"), ("search", "budget")):
            value = getattr(getattr(self, section), name)
            if value is not None and value < 1:
                raise bad(f"{section}.{name}", value, "must be at least 1 (or null)")


def _check_type(value: Any, hint: Any, name: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        hint = next(arg for arg in args if arg is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if not isinstance(value, list):
            raise NASRecError(f"{source}: field '{name}': expected a list, got {value!r}")
        return [_check_type(item, args[0], f"{name}[{i}]", source) for i, item in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a numeric name
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise NASRecError(f"{source}: field '{name}': expected {hint.__name__}, got {value!r}")
    return value


def _from_mapping(cls: type, data: Mapping[str, Any], source: str, prefix: str = "") -> Any:
    if not isinstance(data, Mapping):
        raise NASRecError(f"{source}: {'section ' + repr(prefix.rstrip('.')) if prefix else 'top level'}"
                          f": expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise NASRecError(f"{source}: unknown field '{prefix}{unknown[0]}' (known: "
                          f"{', '.join(sorted(known))})")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint):
            values[name] = _from_mapping(hint, value or {}, source, f"{prefix}{name}.")
        else:
            values[name] = _check_type(value, hint, f"{prefix}{name}", source)
    return cls(**values)


def experiment_from_dict(data: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
    """An `ExperimentConfig` from a dict (e.g. parsed YAML), validated."""
    config = _from_mapping(ExperimentConfig, data or {}, source)
    config.validate(source)
    return config


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


def load_experiment(path: Optional[str] = None, overrides: Sequence[str] = ()
                    ) -> ExperimentConfig:
    """The experiment in `path` (YAML; None for the defaults) with `overrides` applied.

    Relative `prepare.inputs` paths are made relative to the config file's directory when
    they exist there.
    """
    import os

    data = read_yaml(path) if path else {}
    data = apply_overrides(data, overrides)
    source = path or "config"
    config = experiment_from_dict(data, source)
    if path:
        base = os.path.dirname(os.path.abspath(path))
        resolved = []
        for item in config.prepare.inputs:
            split, sep, file = item.rpartition("=") if "=" in item else ("", "", item)
            candidate = os.path.normpath(os.path.join(base, file))
            if not os.path.isabs(file) and not os.path.exists(file) and os.path.exists(candidate):
                file = candidate
            resolved.append(f"{split}{sep}{file}")
        config.prepare.inputs = resolved
    return config
