"""DLRM (Naumov et al. 2019): bottom MLP on the dense features, dot-product interaction, top MLP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasrec_torchrec.baselines.layers import DNN
from nasrec_torchrec.baselines.options import check_common
from nasrec_torchrec.errors import NASRecError

INTERACTIONS = ("dot", "cat")


@dataclass
class DLRMOptions:
    """DLRM's hyper-parameters (defaults: the paper's Criteo model, as in torchrec's DLRM).

    Args:
        bottom_layer_sizes: the bottom MLP's hidden layers; a last layer of width E follows.
        top_layer_sizes: the top MLP's hidden layers; the 1-unit logit layer follows.
        interaction: "dot" (pairwise dot products, the paper) or "cat" (concatenation,
            BARS' best setting on Frappe).
        dropout: dropout after each top-MLP layer.
        batch_norm: BatchNorm in both MLPs.
    """

    bottom_layer_sizes: tuple[int, ...] = (512, 256, 64)
    top_layer_sizes: tuple[int, ...] = (512, 256)
    interaction: str = "dot"
    dropout: float = 0.0
    batch_norm: bool = False

    def validate(self, model: str) -> None:
        """Raise `NASRecError` for a bad value."""
        check_common(model, self.dropout, self.bottom_layer_sizes, self.top_layer_sizes)
        if self.interaction not in INTERACTIONS:
            raise NASRecError(f"--model {model}: option 'interaction': {self.interaction!r} "
                              f"is not one of {INTERACTIONS}")


class DotInteraction(nn.Module):
    """Dot products of every pair of distinct fields (the strict upper triangle of `T Tᵀ`).

    Shapes: `[B, N, E] -> [B, N (N - 1) / 2]`, pairs ordered (0,1), (0,2), ..., (N-2,N-1).

    Example::

        pairs = DotInteraction(3)(torch.randn(4, 3, 8))  # [4, 3]
    """

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.out_features: int = int(rows.numel())

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        gram = torch.bmm(fields, fields.transpose(1, 2))
        return gram[:, self.rows, self.cols]


class DLRMBody(nn.Module):
    """DLRM over the pooled embeddings: bottom MLP, interaction, top MLP.

    The bottom MLP maps the dense features to one E-wide vector (skipped when Dn = 0). With
    `interaction="dot"` the top MLP sees `[bottom output; pairwise dot products of the
    bottom output and the F embeddings]`, as in the paper; when Dn = 0 there is no bottom
    output, and the flattened embeddings take its place (else the top MLP would see no
    first-order signal). With `interaction="cat"` it sees every field flattened.

    Args:
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        options: `DLRMOptions`.

    Shapes: `forward(dense [B, Dn], sparse [B, F, E]) -> logits [B]`.

    Example::

        body = DLRMBody(13, 26, 16, DLRMOptions(bottom_layer_sizes=(64,), top_layer_sizes=(64,)))
        logits = body(torch.randn(4, 13), torch.randn(4, 26, 16))  # [4]
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 options: DLRMOptions | None = None) -> None:
        super().__init__()
        self.options: DLRMOptions = options or DLRMOptions()
        opts = self.options
        self.bottom: DNN | None = None
        num_fields = num_sparse_features
        if dense_in_features:
            self.bottom = DNN(dense_in_features, (*opts.bottom_layer_sizes, embedding_dim),
                              batch_norm=opts.batch_norm)
            num_fields += 1
        self.interaction: DotInteraction | None = None
        if opts.interaction == "dot":
            self.interaction = DotInteraction(num_fields)
            top_in = self.interaction.out_features + (
                embedding_dim if self.bottom is not None
                else num_sparse_features * embedding_dim)
        else:
            top_in = num_fields * embedding_dim
        self.top = DNN(top_in, opts.top_layer_sizes, opts.dropout, opts.batch_norm)
        self.logit = nn.Linear(self.top.out_features, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        fields = sparse
        first_order = sparse.flatten(1)
        if self.bottom is not None:
            bottom = self.bottom(dense)
            fields = torch.cat([bottom.unsqueeze(1), sparse], dim=1)
            first_order = bottom
        if self.interaction is not None:
            top_in = torch.cat([first_order, self.interaction(fields)], dim=1)
        else:
            top_in = fields.flatten(1)
        return self.logit(self.top(top_in)).squeeze(1)
