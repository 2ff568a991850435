"""Logistic regression on the pooled embeddings: the floor every baseline must beat."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasrec_torchrec.baselines.layers import flat_inputs


@dataclass
class LinearOptions:
    """No hyper-parameters: the logit is one linear map."""

    def validate(self, model: str) -> None:
        """Nothing to check."""


class LinearBody(nn.Module):
    """A logit linear in the embeddings and the dense features.

    With trained embeddings this is logistic regression on the one-hot ids: the weight of an
    id is `w_f . e_id` for the table of its feature f.

    Args:
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        options: `LinearOptions` (none).

    Shapes: `forward(dense [B, Dn], sparse [B, F, E]) -> logits [B]`.

    Example::

        body = LinearBody(13, 26, 16)
        logits = body(torch.randn(4, 13), torch.randn(4, 26, 16))  # [4]
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 options: LinearOptions | None = None) -> None:
        super().__init__()
        self.options: LinearOptions = options or LinearOptions()
        self.linear = nn.Linear(num_sparse_features * embedding_dim + dense_in_features, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.linear(flat_inputs(dense, sparse)).squeeze(1)
