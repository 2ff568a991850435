"""The NASRec building operators, each built at a maximum size and run at a chosen one.

Semantics: docs/search_space.md. The same classes serve the supernet (maximum sizes, sliced
on every call) and `NASRecNet` (built at the exact sizes of one architecture), so the two
compute the same function by construction; `sliced_state` gives the exact-size weights.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import nn

from nasrec_torchrec.nn.elastic import ElasticLayerNorm, ElasticLinear, Ranges, full_range

State = dict[str, torch.Tensor]


def dot_product_rows(dense_dim: int) -> int:
    """Rows the operator-balanced Dot-Product projects the sparse input to: ceil(sqrt(2 d))."""
    return math.ceil(math.sqrt(2 * dense_dim))


def pair_count(rows: int) -> int:
    """Products of the strict upper triangle of `rows + 1` rows (dense row + `rows`)."""
    return rows * (rows + 1) // 2


@functools.lru_cache(maxsize=64)
def _pair_indices(total_rows: int) -> torch.Tensor:
    """Flat indices `i * R + j` into an `[R, R]` Gram matrix of the strict upper triangle
    (i < j) ordered by j, then i: pairs among the first k rows come first, so a smaller
    Dot-Product uses a prefix of a larger one's products."""
    return torch.tensor([i * total_rows + j for j in range(1, total_rows) for i in range(j)])


def pairwise_products(rows: torch.Tensor) -> torch.Tensor:
    """`[B, R, E] -> [B, R (R - 1) / 2]`: inner products of every pair of rows i < j."""
    gram = torch.bmm(rows, rows.transpose(1, 2))
    # one gather along a flat axis: its backward is an index_add, cheaper than the
    # two-index advanced indexing and its index_put
    return gram.flatten(1).index_select(1, _pair_indices(rows.shape[1]).to(rows.device))


def fm_interaction(rows: torch.Tensor) -> torch.Tensor:
    """`[B, R, E] -> [B, E]`: (sum of rows)^2 - sum of rows^2, the FM second-order term."""
    return rows.sum(dim=1).pow(2) - rows.pow(2).sum(dim=1)


def self_attention(rows: torch.Tensor) -> torch.Tensor:
    """`softmax(X Xᵀ / sqrt(E)) X` with identical queries, keys and values: `[B, R, E]`."""
    # the 1/sqrt(E) scale inside the batched product (exact for E a power of 4, as 16)
    scores = torch.baddbmm(rows.new_zeros(()).expand(rows.shape[0], rows.shape[1],
                                                     rows.shape[1]),
                           rows, rows.transpose(1, 2), beta=0.0,
                           alpha=1.0 / math.sqrt(rows.shape[-1]))
    return torch.bmm(torch.softmax(scores, dim=-1), rows)


def _prefixed(prefix: str, state: State) -> State:
    return {f"{prefix}.{name}": value for name, value in state.items()}


def _norm_state(norm: Optional[ElasticLayerNorm], width: int) -> State:
    return {} if norm is None else _prefixed("norm", norm.sliced_state(width))


class FC(nn.Module):
    """Dense FC: `relu(LN(W x + b))`, `[B, in] -> [B, d]`."""

    def __init__(self, in_max: int, out_max: int, layer_norm: bool) -> None:
        super().__init__()
        self.linear = ElasticLinear(in_max, out_max)
        self.norm = ElasticLayerNorm(out_max) if layer_norm else None

    def forward(self, x: torch.Tensor, width: int, ranges: Ranges) -> torch.Tensor:
        y = self.linear(x, width, ranges)
        if self.norm is not None:
            y = self.norm(y)
        return torch.relu(y)

    def sliced_state(self, width: int, ranges: Ranges) -> State:
        return {**_prefixed("linear", self.linear.sliced_state(width, ranges)),
                **_norm_state(self.norm, width)}


def _project(project: Optional[ElasticLinear], x: torch.Tensor, width: int,
             ranges: Ranges) -> torch.Tensor:
    """An FC to width d when the input's width differs from d, else the identity."""
    if x.shape[1] == width:
        return x
    assert project is not None, "a projection is needed but was not built"
    return project(x, width, ranges)


def _projection_state(name: str, project: Optional[ElasticLinear], in_width: int, width: int,
                      ranges: Ranges) -> State:
    if in_width == width or project is None:
        return {}
    return _prefixed(name, project.sliced_state(width, ranges))


class Gating(nn.Module):
    """Sigmoid Gating: `LN(sigmoid(W_g x1 + b_g) * p(x2))`, p an FC when widths differ."""

    def __init__(self, left_in_max: int, right_in_max: int, out_max: int, layer_norm: bool,
                 project_right: bool = True) -> None:
        super().__init__()
        self.gate = ElasticLinear(left_in_max, out_max)
        self.project_right = ElasticLinear(right_in_max, out_max) if project_right else None
        self.norm = ElasticLayerNorm(out_max) if layer_norm else None

    def forward(self, x_left: torch.Tensor, left_ranges: Ranges, x_right: torch.Tensor,
                right_ranges: Ranges, width: int) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x_left, width, left_ranges))
        y = gate * _project(self.project_right, x_right, width, right_ranges)
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, left_ranges: Ranges, right_width: int, right_ranges: Ranges,
                     width: int) -> State:
        return {**_prefixed("gate", self.gate.sliced_state(width, left_ranges)),
                **_projection_state("project_right", self.project_right, right_width, width,
                                    right_ranges),
                **_norm_state(self.norm, width)}


class Sum(nn.Module):
    """Sum: `LN(p1(x1) + p2(x2))`, each p an FC to width d when the width differs."""

    def __init__(self, left_in_max: int, right_in_max: int, out_max: int, layer_norm: bool,
                 project_left: bool = True, project_right: bool = True) -> None:
        super().__init__()
        self.project_left = ElasticLinear(left_in_max, out_max) if project_left else None
        self.project_right = ElasticLinear(right_in_max, out_max) if project_right else None
        self.norm = ElasticLayerNorm(out_max) if layer_norm else None

    def forward(self, x_left: torch.Tensor, left_ranges: Ranges, x_right: torch.Tensor,
                right_ranges: Ranges, width: int) -> torch.Tensor:
        y = (_project(self.project_left, x_left, width, left_ranges)
             + _project(self.project_right, x_right, width, right_ranges))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, left_width: int, left_ranges: Ranges, right_width: int,
                     right_ranges: Ranges, width: int) -> State:
        return {**_projection_state("project_left", self.project_left, left_width, width,
                                    left_ranges),
                **_projection_state("project_right", self.project_right, right_width, width,
                                    right_ranges),
                **_norm_state(self.norm, width)}


class DotProduct(nn.Module):
    """Operator-balanced Dot-Product (paper §4.2): `[B, Din], [B, Nin, E] -> [B, d]`.

    The dense input is projected to one row of width E, the sparse rows to
    `ceil(sqrt(2 d))` rows; the pairwise inner products of all these rows (strict upper
    triangle) go through an FC to width d.
    """

    def __init__(self, dense_in_max: int, sparse_in_max: int, out_max: int,
                 embedding_dim: int, layer_norm: bool) -> None:
        super().__init__()
        self.embedding_dim: int = embedding_dim
        rows_max = dot_product_rows(out_max)
        self.dense_projection = ElasticLinear(dense_in_max, embedding_dim)
        self.row_projection = ElasticLinear(sparse_in_max, rows_max)
        self.output = ElasticLinear(pair_count(rows_max), out_max)
        self.norm = ElasticLayerNorm(out_max) if layer_norm else None

    def forward(self, x_dense: torch.Tensor, dense_ranges: Ranges, x_sparse: torch.Tensor,
                sparse_ranges: Ranges, width: int) -> torch.Tensor:
        rows = dot_product_rows(width)
        dense_row = self.dense_projection(x_dense, self.embedding_dim, dense_ranges)
        sparse_rows = self.row_projection.forward_rows(x_sparse, rows, sparse_ranges)
        products = pairwise_products(torch.cat([dense_row.unsqueeze(1), sparse_rows], dim=1))
        y = self.output(products, width, full_range(pair_count(rows)))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, dense_ranges: Ranges, sparse_ranges: Ranges, width: int) -> State:
        rows = dot_product_rows(width)
        return {
            **_prefixed("dense_projection",
                        self.dense_projection.sliced_state(self.embedding_dim, dense_ranges)),
            **_prefixed("row_projection", self.row_projection.sliced_state(rows, sparse_ranges)),
            **_prefixed("output", self.output.sliced_state(width, full_range(pair_count(rows)))),
            **_norm_state(self.norm, width),
        }


class EmbedFC(nn.Module):
    """EmbedFC: an FC along the row axis, `LN(W X + b)`: `[B, Nin, E] -> [B, n, E]`."""

    def __init__(self, sparse_in_max: int, rows_max: int, embedding_dim: int,
                 layer_norm: bool) -> None:
        super().__init__()
        self.linear = ElasticLinear(sparse_in_max, rows_max)
        self.norm = ElasticLayerNorm(embedding_dim) if layer_norm else None

    def forward(self, x_sparse: torch.Tensor, ranges: Ranges, rows: int) -> torch.Tensor:
        y = self.linear.forward_rows(x_sparse, rows, ranges)
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, ranges: Ranges, rows: int) -> State:
        state = _prefixed("linear", self.linear.sliced_state(rows, ranges))
        if self.norm is not None:
            state.update(_prefixed("norm", self.norm.sliced_state(self.norm.weight.shape[0])))
        return state


class SelfAttention(EmbedFC):
    """Self-Attention: rows projected to n, then `LN(softmax(Y Yᵀ / sqrt(E)) Y)`."""

    def forward(self, x_sparse: torch.Tensor, ranges: Ranges, rows: int) -> torch.Tensor:
        y = self_attention(self.linear.forward_rows(x_sparse, rows, ranges))
        return y if self.norm is None else self.norm(y)


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
        return _prefixed("linear", self.linear.sliced_state(self.rows * self.embedding_dim,
                                                             full_range(width)))


class FM(nn.Module):
    """The official FM term `W ((Σ rows)² − Σ rows²) + b`, `[B, n, E] -> [B, d]`, then
    LayerNorm when `layer_norm` (the official code has none here).

    The second-order term grows with the square of the row count (dozens of rows: hundreds
    of times the rows' scale), so with LayerNorm on it is normalised like every operator's
    output; without it, a freshly initialised supernet's logits reach ~100 on some paths.
    """

    def __init__(self, embedding_dim: int, out_max: int, layer_norm: bool) -> None:
        super().__init__()
        self.linear = ElasticLinear(embedding_dim, out_max)
        self.norm = ElasticLayerNorm(out_max) if layer_norm else None

    def forward(self, rows: torch.Tensor, width: int) -> torch.Tensor:
        y = self.linear(fm_interaction(rows), width, full_range(rows.shape[-1]))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, width: int) -> State:
        return {**_prefixed("linear", self.linear.sliced_state(
                    width, full_range(self.linear.in_max))),
                **_norm_state(self.norm, width)}
