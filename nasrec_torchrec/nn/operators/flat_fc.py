"""The Flat-FC operator: an FC over the block's sparse rows flattened (the deep part of DeepFM
and DCNv2, which reads the concatenated embeddings)."""

from __future__ import annotations

import torch

from nasrec_torchrec.nn.elastic import Ranges
from nasrec_torchrec.nn.operators.base import (OperatorInputs, OperatorPlan, OperatorShape,
                                               register_operator)
from nasrec_torchrec.nn.operators.dense import FC


def flat_columns(rows: Ranges, embedding_dim: int) -> Ranges:
    """The weight columns of sparse-concat row ranges once the rows are flattened (row r holds
    columns `r·E .. (r+1)·E`): `((0, 10), (26, 16)), E=16 -> ((0, 160), (416, 256))`."""
    return tuple((start * embedding_dim, count * embedding_dim) for start, count in rows)


@register_operator("flat_fc")
class FlatFC(FC):
    """Flat-FC: `relu(LN(W vec(X) + b))`, X the sparse concat: `[B, Nin, E] -> [B, d]`.

    `vec` flattens each sample's rows one after another (`[B, Nin·E]`); W shares by its first
    d rows and the columns of the chosen sources' rows, like FC over the dense concat. On data
    without dense features (Frappe, Avazu) it is the only operator that feeds the embeddings
    themselves, not their products, to a dense layer.

    Example::

        op = FlatFC(sparse_in_max=30, out_max=64, embedding_dim=16, layer_norm=True)
        plan = OperatorPlan(width=32, sparse=((0, 10),))
        y = op(OperatorInputs(plan, sparse=rows))  # [B, 10, 16] -> [B, 32]
    """

    def __init__(self, sparse_in_max: int, out_max: int, embedding_dim: int,
                 layer_norm: bool, batch_norm: bool = False) -> None:
        super().__init__(sparse_in_max * embedding_dim, out_max, layer_norm, batch_norm)
        self.embedding_dim = embedding_dim

    @classmethod
    def build(cls, shape: OperatorShape) -> "FlatFC":
        return cls(shape.sparse_rows, shape.dense_max, shape.embedding_dim, shape.layer_norm,
                   shape.batch_norm)

    def features(self, inputs: OperatorInputs) -> torch.Tensor:
        """The sparse concat flattened: `[B, Nin·E]`."""
        rows = inputs.sparse
        return rows.reshape(rows.shape[0], -1)

    def columns(self, plan: OperatorPlan) -> Ranges:
        """W's columns of the chosen sources' rows."""
        return flat_columns(plan.sparse, self.embedding_dim)
