"""The block-level terms turned on by `Block.project_concat` and `Block.fm` (flags of a
block, not operators of the table)."""

from __future__ import annotations

import torch
from torch import nn

from nasrec_torchrec.nn.elastic import ElasticLinear, full_range
from nasrec_torchrec.nn.operators.base import State, dense_norm, norm_state, prefixed


def fm_interaction(rows: torch.Tensor) -> torch.Tensor:
    """`[B, R, E] -> [B, E]`: (sum of rows)^2 - sum of rows^2, the FM second-order term."""
    return rows.sum(dim=1).pow(2) - rows.pow(2).sum(dim=1)


class ProjectConcat(nn.Module):
    """Projects the dense output `[B, d]` to `[B, P, E]` rows appended to the sparse output."""

    def __init__(self, dense_max: int, rows: int, embedding_dim: int) -> None:
        super().__init__()
        self.rows: int = rows
        self.embedding_dim: int = embedding_dim
        self.linear = ElasticLinear(dense_max, rows * embedding_dim)

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        y = self.linear(dense, self.rows * self.embedding_dim, full_range(dense.shape[1]))
        return y.view(-1, self.rows, self.embedding_dim)

    def sliced_state(self, width: int) -> State:
        return prefixed("linear", self.linear.sliced_state(self.rows * self.embedding_dim,
                                                            full_range(width)))


class FM(nn.Module):
    """The official FM term `W ((Σ rows)² − Σ rows²) + b`, `[B, n, E] -> [B, d]`, then
    LayerNorm when `layer_norm` (the official code has none here), or BatchNorm when
    `batch_norm`.

    The second-order term grows with the square of the row count (dozens of rows: hundreds
    of times the rows' scale), so with LayerNorm on it is normalised like every operator's
    output; without it, a freshly initialised supernet's logits reach ~100 on some paths.
    """

    def __init__(self, embedding_dim: int, out_max: int, layer_norm: bool,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.linear = ElasticLinear(embedding_dim, out_max)
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    def forward(self, rows: torch.Tensor, width: int) -> torch.Tensor:
        y = self.linear(fm_interaction(rows), width, full_range(rows.shape[-1]))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, width: int) -> State:
        return {**prefixed("linear", self.linear.sliced_state(
                    width, full_range(self.linear.in_max))),
                **norm_state(self.norm, width)}
