"""The sparse operators on the sparse concat: EmbedFC and Self-Attention (`[B, n, E]` out)."""

from __future__ import annotations

import math

import torch

from nasrec_torchrec.nn.elastic import ElasticLayerNorm, ElasticLinear
from nasrec_torchrec.nn.operators.base import (Operator, OperatorInputs, OperatorPlan,
                                               OperatorShape, State, prefixed,
                                               register_operator)


def self_attention(rows: torch.Tensor) -> torch.Tensor:
    """`softmax(X Xᵀ / sqrt(E)) X` with identical queries, keys and values: `[B, R, E]`."""
    # the 1/sqrt(E) scale inside the batched product (exact for E a power of 4, as 16)
    scores = torch.baddbmm(rows.new_zeros(()).expand(rows.shape[0], rows.shape[1],
                                                     rows.shape[1]),
                           rows, rows.transpose(1, 2), beta=0.0,
                           alpha=1.0 / math.sqrt(rows.shape[-1]))
    return torch.bmm(torch.softmax(scores, dim=-1), rows)


@register_operator("embed_fc")
class EmbedFC(Operator):
    """EmbedFC: an FC along the row axis, `LN(W X + b)`: `[B, Nin, E] -> [B, n, E]`."""

    def __init__(self, sparse_in_max: int, rows_max: int, embedding_dim: int,
                 layer_norm: bool) -> None:
        super().__init__()
        self.linear = ElasticLinear(sparse_in_max, rows_max)
        self.norm = ElasticLayerNorm(embedding_dim) if layer_norm else None

    @classmethod
    def build(cls, shape: OperatorShape) -> "EmbedFC":
        return cls(shape.sparse_rows, shape.rows_max, shape.embedding_dim, shape.layer_norm)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        y = self.linear.forward_rows(inputs.sparse, inputs.plan.rows, inputs.plan.sparse)
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        state = prefixed("linear", self.linear.sliced_state(plan.rows, plan.sparse))
        if self.norm is not None:
            state.update(prefixed("norm", self.norm.sliced_state(self.norm.weight.shape[0])))
        return state


@register_operator("attention")
class SelfAttention(EmbedFC):
    """Self-Attention: rows projected to n, then `LN(softmax(Y Yᵀ / sqrt(E)) Y)`."""

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        y = self_attention(self.linear.forward_rows(inputs.sparse, inputs.plan.rows,
                                                    inputs.plan.sparse))
        return y if self.norm is None else self.norm(y)
