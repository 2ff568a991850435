"""The TorchRec-facing model: an `EmbeddingBagCollection` under a body (supernet or NASRecNet)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torchrec.datasets.utils import Batch
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.nn.precision import body_autocast

if TYPE_CHECKING:
    from nasrec_torchrec.space.architecture import Architecture


class NASRecModel(nn.Module):
    """Pooled embeddings of every sparse feature, stacked, then a body that returns logits.

    The caller owns the `EmbeddingBagCollection` (and therefore its sharding), as with
    `torchrec.models.dlrm.DLRM`. Features are looked up by name, in the order of the
    collection's configs, never by position in the pooled `KeyedTensor`.

    Args:
        embedding_bag_collection: one table per sparse feature, all of the same dimension E.
        dense_in_features: Dn, the number of dense features.
        body: a module `body(dense [B, Dn], sparse [B, F, E], ...) -> logits [B]`.
        precision: "fp32", or "bf16": the body's forward under bf16 autocast (fp32 weights
            and tables; `nn.precision`).
        compile_body: compile the body in place with `torch.compile` (inductor, fixed
            shapes) for its training forward and backward; in eval mode (evaluation,
            BatchNorm recalibration) the same body runs eagerly. The body's parameters and
            `state_dict` keys are unchanged (no `_orig_mod.` prefix); random ops (dropout)
            draw what the eager body draws (inductor's `fallback_random`). For a body of
            fixed shapes (a `NASRecNet`, a baseline), not a supernet (its path changes at
            every step).

    Example::

        model = NASRecModel(ebc, dense_in_features=13, body=NASRecNet(architecture, 13, 26))
        logits = model(dense_features, sparse_features)  # [B]
    """

    def __init__(self, embedding_bag_collection: EmbeddingBagCollection,
                 dense_in_features: int, body: nn.Module, precision: str = "fp32",
                 compile_body: bool = False) -> None:
        super().__init__()
        self.precision: str = precision
        self.compile_body: bool = compile_body
        if compile_body:
            body.compile(dynamic=False, options={"fallback_random": True})
        self.embedding_bag_collection = embedding_bag_collection
        self.dense_in_features: int = dense_in_features
        self.feature_names: list[str] = [
            name for config in embedding_bag_collection.embedding_bag_configs()
            for name in config.feature_names
        ]
        self.body = body

    @classmethod
    def for_architecture(cls, embedding_bag_collection: EmbeddingBagCollection,
                         dense_in_features: int, architecture: "Architecture",
                         layer_norm: bool = True) -> "NASRecModel":
        """The model of a found architecture: a `NASRecNet` body sized from the collection."""
        from nasrec_torchrec.nn.networks import NASRecNet

        configs = embedding_bag_collection.embedding_bag_configs()
        num_features = sum(len(config.feature_names) for config in configs)
        body = NASRecNet(architecture, dense_in_features, num_features,
                         embedding_dim=configs[0].embedding_dim, layer_norm=layer_norm)
        return cls(embedding_bag_collection, dense_in_features, body)

    def embed(self, sparse_features: KeyedJaggedTensor) -> torch.Tensor:
        """Pooled embeddings stacked by feature name: `[B, F, E]`."""
        pooled = self.embedding_bag_collection(sparse_features).to_dict()
        return torch.stack([pooled[name] for name in self.feature_names], dim=1)

    def forward(self, dense_features: torch.Tensor, sparse_features: KeyedJaggedTensor,
                *body_args: object) -> torch.Tensor:
        """Logits `[B]`; extra arguments (e.g. a supernet's architecture) go to the body."""
        return self.run_body(dense_features, self.embed(sparse_features), *body_args)

    def run_body(self, dense: torch.Tensor, sparse: torch.Tensor,
                 *body_args: object) -> torch.Tensor:
        """The body's logits `[B]` (fp32) on `dense [B, Dn]`, `sparse [B, F, E]`, in the
        model's precision (and, in eval mode, eagerly even if `compile_body`)."""
        if self.compile_body and not self.training:
            with torch.compiler.set_stance("force_eager"):
                return self._run_body(dense, sparse, *body_args)
        return self._run_body(dense, sparse, *body_args)

    def _run_body(self, dense: torch.Tensor, sparse: torch.Tensor,
                  *body_args: object) -> torch.Tensor:
        if self.precision == "fp32":
            return self.body(dense, sparse, *body_args)
        with body_autocast(self.precision, dense.device.type):
            logits = self.body(dense, sparse, *body_args)
        return logits.float()


class NASRecModelTrain(nn.Module):
    """Adds the binary cross-entropy loss, as `torchrec.models.dlrm.DLRMTrain` does.

    `forward(batch) -> (loss, (loss.detach(), logits.detach(), labels))`, the shape TorchRec's
    train pipelines expect; the forward takes the batch alone, so `TrainPipelineSparseDist`
    can trace it. A supernet body trains the path set by `body.set_architecture(path)`.

    Args:
        model: the `NASRecModel` trained.
        embedding_l2: with `embedding_l2 > 0` the returned loss (the one back-propagated) adds
            `embedding_l2 * mean_b sum_{f,e} sparse[b, f, e]^2` over the pooled embeddings
            `[B, F, E]` the body receives; the outputs keep the BCE alone.

    Example::

        train_model = NASRecModelTrain(NASRecModel(ebc, 13, body), embedding_l2=1e-6)
        loss, (bce, logits, labels) = train_model(batch)  # logits, labels: [B]
    """

    def __init__(self, model: NASRecModel, embedding_l2: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.embedding_l2: float = embedding_l2

    def forward(self, batch: Batch
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        sparse = self.model.embed(batch.sparse_features)
        logits = self.model.run_body(batch.dense_features, sparse)
        labels = batch.labels.float()
        loss = self.loss_fn(logits, labels)
        outputs = (loss.detach(), logits.detach(), labels)
        if not self.embedding_l2:
            return loss, outputs
        penalty = sparse.pow(2).sum(dim=(1, 2)).mean()
        return loss + self.embedding_l2 * penalty, outputs
