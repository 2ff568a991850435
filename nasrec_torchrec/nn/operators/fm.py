"""The FM operator: DeepFM's second-order term of the block's sparse input rows."""

from __future__ import annotations

import torch

from nasrec_torchrec.nn.elastic import ElasticLinear, full_range
from nasrec_torchrec.nn.operators.base import (Operator, OperatorInputs, OperatorPlan,
                                               OperatorShape, State, dense_norm, norm_state,
                                               prefixed,
                                               register_operator)
from nasrec_torchrec.nn.operators.block_level import fm_interaction


@register_operator("fm")
class FactorizationMachine(Operator):
    """FM: `LN(W ½((Σ_r x_r)² − Σ_r x_r²) + b)` over the rows x_r of the sparse concat,
    `[B, Nin, E] -> [B, d]`.

    The second-order term `[B, E]` (E = embedding dim) does not depend on which or how many
    rows are read, so `W ∈ R^{d × E}` shares by its first d rows. Not the block-level flag
    `Block.fm` (`FM`), which reads the block's own sparse branch output.

    Example::

        op = FactorizationMachine(embedding_dim=16, out_max=64, layer_norm=True)
        y = op(OperatorInputs(OperatorPlan(width=32), sparse=rows))  # [B, 26, 16] -> [B, 32]
    """

    def __init__(self, embedding_dim: int, out_max: int, layer_norm: bool,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.linear = ElasticLinear(embedding_dim, out_max)
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    @classmethod
    def build(cls, shape: OperatorShape) -> "FactorizationMachine":
        return cls(shape.embedding_dim, shape.dense_max, shape.layer_norm, shape.batch_norm)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        interaction = 0.5 * fm_interaction(inputs.sparse)
        y = self.linear(interaction, inputs.plan.width, full_range(self.linear.in_max))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        return {**prefixed("linear", self.linear.sliced_state(plan.width,
                                                              full_range(self.linear.in_max))),
                **norm_state(self.norm, plan.width)}
