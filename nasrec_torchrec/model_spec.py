"""What a training run trains, as a typed value written into its `config.json`.

`ModelSpec` replaces the free-form settings earlier runs kept in `config.extra`: the kind of
model (a supernet over a whole search space, a found architecture, or a baseline with its
options), its LayerNorm and dropout. Readers (`nasrec evaluate`, the search's supernet loader,
the ranking study) rebuild the body from it alone: `build_body(spec, schema, embedding_dim)`.
The dataclass is pure Python; `build_body` imports the networks when called.

Example::

    spec = ModelSpec.for_architecture(architecture, layer_norm=True)
    body = build_body(spec, schema, embedding_dim=16)  # a NASRecNet
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import option
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.space.search_space import SearchSpace

MODEL_KINDS = ("supernet", "architecture", "baseline")


@dataclass
class ModelSpec:
    """The body a run trains.

    Args:
        kind: "supernet", "architecture" or "baseline".
        architecture: the found architecture (kind "architecture"), as `Architecture.to_dict`.
        architecture_file: the file it was read from (provenance only).
        space: the whole search space (kind "supernet"), as `SearchSpace.to_dict`.
        strategy, path_warmup: the supernet's path sampling.
        baseline: the baseline's name (kind "baseline"); baseline_options: its
            `KEY=VALUE` options.
        layer_norm: LayerNorm in the NASRec operators.
        dropout: dropout on every block's dense output while training (NASRecNet).
        batch_norm: BatchNorm instead of LayerNorm on the dense operators (NASRecNet, or
            the supernet's `ElasticBatchNorm`).
    """

    kind: str
    architecture: Optional[dict[str, Any]] = None
    architecture_file: Optional[str] = option(None, "the file it was read from", cli=False,
                                              fixed_on_resume=False)
    space: Optional[dict[str, Any]] = None
    strategy: Optional[str] = None
    path_warmup: Optional[float] = None
    baseline: Optional[str] = None
    baseline_options: list[str] = field(default_factory=list)
    layer_norm: bool = True
    dropout: float = 0.0
    batch_norm: bool = False

    @classmethod
    def for_supernet(cls, space: SearchSpace, strategy: str, path_warmup: float,
                     layer_norm: bool, batch_norm: bool = False) -> "ModelSpec":
        """A supernet over `space`."""
        return cls("supernet", space=space.to_dict(), strategy=strategy,
                   path_warmup=path_warmup, layer_norm=layer_norm, batch_norm=batch_norm)

    @classmethod
    def for_architecture(cls, architecture: Architecture, layer_norm: bool = True,
                         dropout: float = 0.0, source: Optional[str] = None,
                         batch_norm: bool = False) -> "ModelSpec":
        """A found architecture (`source`: the file it came from)."""
        return cls("architecture", architecture=architecture.to_dict(),
                   architecture_file=source, layer_norm=layer_norm, dropout=dropout,
                   batch_norm=batch_norm)

    @classmethod
    def for_baseline(cls, name: str, options: list[str]) -> "ModelSpec":
        """A baseline by name with its `KEY=VALUE` options."""
        return cls("baseline", baseline=name, baseline_options=list(options))

    def search_space(self, source: str = "model") -> SearchSpace:
        """The supernet's search space."""
        if self.kind != "supernet" or self.space is None:
            raise NASRecError(f"{source}: field 'model.kind': {self.kind!r} is not a supernet")
        return SearchSpace.from_dict(self.space, source=f"{source}: field 'model.space'")

    def found_architecture(self, source: str = "model") -> Architecture:
        """The found architecture."""
        if self.kind != "architecture" or self.architecture is None:
            raise NASRecError(f"{source}: field 'model.kind': {self.kind!r} is not a found "
                              "architecture")
        from nasrec_torchrec.space.validation import validate_structure

        where = f"{source}: model.architecture"
        architecture = Architecture.from_dict(self.architecture, source=where)
        validate_structure(architecture, where)
        return architecture

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "model") -> "ModelSpec":
        """From `to_dict`'s output; faults name `source` and the field."""
        from nasrec_torchrec.settings import from_mapping

        spec = from_mapping(cls, data, source, "model.")
        if spec.kind not in MODEL_KINDS:
            raise NASRecError(f"{source}: field 'model.kind': {spec.kind!r} is not one of "
                              f"{', '.join(MODEL_KINDS)}")
        return spec


def run_model_spec(config: Any, source: str) -> ModelSpec:
    """The `ModelSpec` of a run's `TrainConfig`: its `model`, or for a run written before
    `model` existed, the one its `extra` settings describe."""
    if config.model is not None:
        return config.model
    extra = config.extra
    kind = extra.get("kind")
    layer_norm = bool(extra.get("layer_norm", True))
    if kind == "supernet" and extra.get("space"):
        from nasrec_torchrec.space.search_space import load_space

        return ModelSpec.for_supernet(load_space(extra["space"]), extra.get("strategy", ""),
                                      float(extra.get("path_warmup", 0.0)), layer_norm)
    if kind == "architecture" and (extra.get("architecture") or extra.get("arch")):
        from nasrec_torchrec.space.official import load_architecture

        architecture = Architecture.from_dict(extra["architecture"], source=source) \
            if extra.get("architecture") else load_architecture(extra["arch"])
        return ModelSpec.for_architecture(architecture, layer_norm,
                                          float(extra.get("dropout", 0.0)), extra.get("arch"))
    if kind == "baseline" and extra.get("model"):
        return ModelSpec.for_baseline(extra["model"], list(extra.get("model_options") or []))
    raise NASRecError(f"{source}: field 'model': missing: not a training run of this toolkit")


def build_body(spec: ModelSpec, dense_in_features: int, num_sparse_features: int,
               embedding_dim: int, source: str = "model") -> Any:
    """The `nn.Module` body `body(dense [B, Dn], sparse [B, F, E]) -> logits [B]` of `spec`,
    freshly initialised (seed torch first for a reproducible init)."""
    if spec.kind == "supernet":
        from nasrec_torchrec.nn.networks import Supernet

        return Supernet(spec.search_space(source), dense_in_features, num_sparse_features,
                        embedding_dim=embedding_dim, layer_norm=spec.layer_norm,
                        batch_norm=spec.batch_norm)
    if spec.kind == "architecture":
        from nasrec_torchrec.nn.networks import NASRecNet

        return NASRecNet(spec.found_architecture(source), dense_in_features,
                         num_sparse_features, embedding_dim=embedding_dim,
                         layer_norm=spec.layer_norm, dropout=spec.dropout,
                         batch_norm=spec.batch_norm)
    if spec.kind == "baseline" and spec.baseline:
        from nasrec_torchrec.baselines import get_baseline
        from nasrec_torchrec.baselines.options import parse_key_values

        return get_baseline(spec.baseline, dense_in_features, num_sparse_features,
                            embedding_dim, **parse_key_values(spec.baseline_options))
    raise NASRecError(f"{source}: field 'model': {spec.kind!r} names no model")
