"""Parts shared by the baselines: a DNN tower and the dense features as one more field.

`DNN` stacks `torchrec.modules.mlp.Perceptron`s whose activation is ReLU, optionally preceded
by BatchNorm and followed by dropout (`torchrec.modules.mlp.MLP` has neither), as in the
towers of DeepFM, xDeepFM, AutoInt+ and DCNv2 (and BARS/FuxiCTR's `MLP_Block`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torchrec.modules.mlp import Perceptron


def _activation(width: int, dropout: float, batch_norm: bool) -> nn.Module:
    parts: list[nn.Module] = []
    if batch_norm:
        parts.append(nn.BatchNorm1d(width))
    parts.append(nn.ReLU())
    if dropout > 0:
        parts.append(nn.Dropout(dropout))
    return nn.Sequential(*parts)


class DNN(nn.Module):
    """Fully connected ReLU layers, each `Linear -> [BatchNorm] -> ReLU -> [Dropout]`.

    Args:
        in_features: I, the input width.
        layer_sizes: the width of each layer; empty for the identity.
        dropout: dropout probability after every layer's activation (0: none).
        batch_norm: BatchNorm1d before every activation.

    Shapes: `[B, I] -> [B, layer_sizes[-1]]` (`[B, I]` when `layer_sizes` is empty).

    Example::

        tower = DNN(100, (400, 400, 400), dropout=0.2, batch_norm=True)
        hidden = tower(torch.randn(8, 100))  # [8, 400]
    """

    def __init__(self, in_features: int, layer_sizes: Sequence[int], dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in layer_sizes:
            layers.append(Perceptron(width, size,
                                     activation=_activation(size, dropout, batch_norm)))
            width = size
        self.layers = nn.Sequential(*layers)
        self.out_features: int = width

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class DenseField(nn.Module):
    """The dense features as one more field: a linear map `[B, Dn] -> [B, 1, E]`.

    Field-interaction models (FM, CIN, self-attention) act on `[B, F, E]`; a Criteo-like
    dataset's dense features join them as field F+1 through this map (a Frappe- or Avazu-like
    dataset, Dn = 0, has none: use `DenseField.maybe`).

    Args:
        dense_in_features: Dn (at least 1).
        embedding_dim: E.

    Example::

        field = DenseField(13, 16)
        fields = torch.cat([sparse, field(dense)], dim=1)  # [B, F + 1, 16]
    """

    def __init__(self, dense_in_features: int, embedding_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(dense_in_features, embedding_dim)

    @staticmethod
    def maybe(dense_in_features: int, embedding_dim: int) -> Optional["DenseField"]:
        """A `DenseField`, or None when there are no dense features."""
        return DenseField(dense_in_features, embedding_dim) if dense_in_features else None

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        return self.project(dense).unsqueeze(1)


def with_dense_field(sparse: torch.Tensor, dense: torch.Tensor,
                     field: Optional[DenseField]) -> torch.Tensor:
    """`[B, F, E]`, with the dense field appended as `[B, F + 1, E]` when there is one."""
    if field is None:
        return sparse
    return torch.cat([sparse, field(dense)], dim=1)


def flat_inputs(dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
    """Flattened embeddings then the dense features: `[B, F * E + Dn]`."""
    flat = sparse.flatten(1)
    return torch.cat([flat, dense], dim=1) if dense.size(1) else flat
