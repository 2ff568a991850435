"""The operator-balanced Dot-Product (paper §4.2): the dense and sparse concats interact."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from nasrec_torchrec.nn.elastic import ElasticLinear, full_range
from nasrec_torchrec.nn.operators.base import (Operator, OperatorInputs, OperatorPlan,
                                               OperatorShape, State, dense_norm, norm_state,
                                               prefixed,
                                               register_operator)


def dot_product_rows(dense_dim: int) -> int:
    """Rows the operator-balanced Dot-Product projects the sparse input to: ceil(sqrt(2 d))."""
    return math.ceil(math.sqrt(2 * dense_dim))


def pair_count(rows: int) -> int:
    """Products of the strict upper triangle of `rows + 1` rows (dense row + `rows`)."""
    return rows * (rows + 1) // 2


@functools.lru_cache(maxsize=64)
def _pair_indices(total_rows: int) -> np.ndarray:
    """Flat indices `i * R + j` into an `[R, R]` Gram matrix of the strict upper triangle
    (i < j) ordered by j, then i: pairs among the first k rows come first, so a smaller
    Dot-Product uses a prefix of a larger one's products. A numpy array: a cached tensor
    made while tracing (`torch.export`) would be a fake tensor that outlives the trace."""
    return np.array([i * total_rows + j for j in range(1, total_rows) for i in range(j)],
                    dtype=np.int64)


def pairwise_products(rows: torch.Tensor) -> torch.Tensor:
    """`[B, R, E] -> [B, R (R - 1) / 2]`: inner products of every pair of rows i < j."""
    gram = torch.bmm(rows, rows.transpose(1, 2))
    # one gather along a flat axis: its backward is an index_add, cheaper than the
    # two-index advanced indexing and its index_put
    indices = torch.from_numpy(_pair_indices(rows.shape[1])).to(rows.device)
    return gram.flatten(1).index_select(1, indices)


@register_operator("dot_product")
class DotProduct(Operator):
    """Operator-balanced Dot-Product: dense concat `[B, Din]`, sparse concat `[B, Nin, E]`
    -> `[B, d]`.

    The dense input is projected to one row of width E, the sparse rows to
    `ceil(sqrt(2 d))` rows; the pairwise inner products of all these rows (strict upper
    triangle) go through an FC to width d.
    """

    def __init__(self, dense_in_max: int, sparse_in_max: int, out_max: int,
                 embedding_dim: int, layer_norm: bool, batch_norm: bool = False) -> None:
        super().__init__()
        self.embedding_dim: int = embedding_dim
        rows_max = dot_product_rows(out_max)
        self.dense_projection = ElasticLinear(dense_in_max, embedding_dim)
        self.row_projection = ElasticLinear(sparse_in_max, rows_max)
        self.output = ElasticLinear(pair_count(rows_max), out_max)
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    @classmethod
    def build(cls, shape: OperatorShape) -> "DotProduct":
        return cls(shape.concat_width, shape.sparse_rows, shape.dense_max, shape.embedding_dim,
                   shape.layer_norm, shape.batch_norm)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        plan = inputs.plan
        rows = dot_product_rows(plan.width)
        dense_row = self.dense_projection(inputs.concat, self.embedding_dim, plan.concat)
        sparse_rows = self.row_projection.forward_rows(inputs.sparse, rows, plan.sparse)
        products = pairwise_products(torch.cat([dense_row.unsqueeze(1), sparse_rows], dim=1))
        y = self.output(products, plan.width, full_range(pair_count(rows)))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        rows = dot_product_rows(plan.width)
        return {
            **prefixed("dense_projection",
                       self.dense_projection.sliced_state(self.embedding_dim, plan.concat)),
            **prefixed("row_projection", self.row_projection.sliced_state(rows, plan.sparse)),
            **prefixed("output",
                       self.output.sliced_state(plan.width, full_range(pair_count(rows)))),
            **norm_state(self.norm, plan.width),
        }
