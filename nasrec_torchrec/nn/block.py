"""A choice block: the dense and sparse branches of one block, for a supernet or a subnet.

A supernet block holds every operator of the space at its maximum size over the full input
layout of its position; a subnet block (`for_subnet`) holds only the operators one
architecture uses, at their exact sizes, over the sources it reads. Both run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from nasrec_torchrec.nn.elastic import DenseLayout, Ranges, SparseLayout
from nasrec_torchrec.nn.operators import (FC, FM, DotProduct, EmbedFC, Gating, ProjectConcat,
                                          SelfAttention, State, Sum)
from nasrec_torchrec.space.architecture import Architecture, Block

Tensors = list[Optional[torch.Tensor]]
LiveFlags = tuple[bool, bool, bool]  # dense output, sparse branch, sparse output


@dataclass(frozen=True)
class SourceShapes:
    """Actual widths of every source of one architecture: index 0 = raw inputs, k = block k."""

    dense_widths: tuple[int, ...]
    sparse_rows: tuple[tuple[int, int], ...]  # (branch rows, Project-Concat rows)

    @classmethod
    def of(cls, architecture: Architecture, dense_in_features: int,
           num_sparse_features: int) -> "SourceShapes":
        """Shapes of the raw inputs and of each block's outputs under `architecture`."""
        pc_rows = architecture.project_concat_rows
        return cls(
            dense_widths=(dense_in_features,) + tuple(b.dense_dim for b in architecture.blocks),
            sparse_rows=((num_sparse_features, 0),) + tuple(
                (b.sparse_dim, pc_rows if b.project_concat else 0) for b in architecture.blocks),
        )


@dataclass(frozen=True)
class BlockLayouts:
    """Input layouts of a block's weights: the dense concat (FC, Dot-Product), the left and
    right inputs of Gating / Sum, and the sparse concat."""

    concat: DenseLayout
    left: DenseLayout
    right: DenseLayout
    sparse: SparseLayout


@dataclass(frozen=True)
class _Plan:
    """The ranges every weight of a block uses for one choice."""

    concat: Ranges = ()
    left: Ranges = ()
    right: Ranges = ()
    sparse: Ranges = ()


class ChoiceBlock(nn.Module):
    """One choice block: `(dense inputs, sparse inputs) -> (dense [B, d], sparse [B, R, E])`.

    Args:
        dense_ops, sparse_ops: the operators built (by name, see `space.architecture`).
        layouts: the input layouts of the weights.
        dense_max: largest dense width d; rows_max: largest sparse branch rows n.
        embedding_dim: E; pc_rows: Project-Concat rows (0: no Project-Concat built).
        fm: build the FM operator; layer_norm: LayerNorm in every operator.
        projections: which Gating / Sum projections to build (a subnet omits identities).
    """

    def __init__(self, dense_ops: tuple[str, ...], sparse_ops: tuple[str, ...],
                 layouts: BlockLayouts, dense_max: int, rows_max: int, embedding_dim: int,
                 pc_rows: int, fm: bool, layer_norm: bool,
                 projections: Optional[dict[str, bool]] = None) -> None:
        super().__init__()
        project = projections or {}
        self.layouts = layouts
        self.dense_ops = nn.ModuleDict()
        for name in dense_ops:
            if name == "fc":
                op: nn.Module = FC(layouts.concat.width, dense_max, layer_norm)
            elif name == "gating":
                op = Gating(layouts.left.width, layouts.right.width, dense_max, layer_norm,
                            project_right=project.get("gating_right", True))
            elif name == "sum":
                op = Sum(layouts.left.width, layouts.right.width, dense_max, layer_norm,
                         project_left=project.get("sum_left", True),
                         project_right=project.get("sum_right", True))
            elif name == "dot_product":
                op = DotProduct(layouts.concat.width, layouts.sparse.rows, dense_max,
                                embedding_dim, layer_norm)
            else:
                raise ValueError(f"unknown dense operator '{name}'")
            self.dense_ops[name] = op
        self.sparse_ops = nn.ModuleDict()
        for name in sparse_ops:
            if name == "embed_fc":
                self.sparse_ops[name] = EmbedFC(layouts.sparse.rows, rows_max, embedding_dim,
                                                layer_norm)
            elif name == "attention":
                self.sparse_ops[name] = SelfAttention(layouts.sparse.rows, rows_max,
                                                      embedding_dim, layer_norm)
            else:
                raise ValueError(f"unknown sparse operator '{name}'")
        self.project_concat = ProjectConcat(dense_max, pc_rows, embedding_dim) if pc_rows else None
        self.fm = FM(embedding_dim, dense_max, layer_norm) if fm else None

    @classmethod
    def for_supernet(cls, index: int, dense_ops: tuple[str, ...], sparse_ops: tuple[str, ...],
                     dense_in_features: int, num_sparse_features: int, dense_max: int,
                     rows_max: int, embedding_dim: int, pc_rows: int, fm: bool,
                     layer_norm: bool) -> "ChoiceBlock":
        """Block `index` of a supernet: every operator over every earlier source's slot."""
        dense = DenseLayout.of({0: dense_in_features, **{k: dense_max for k in range(1, index)}})
        sparse = SparseLayout.of({0: (num_sparse_features, 0),
                                  **{k: (rows_max, pc_rows) for k in range(1, index)}})
        return cls(dense_ops, sparse_ops, BlockLayouts(dense, dense, dense, sparse), dense_max,
                   rows_max, embedding_dim, pc_rows, fm, layer_norm)

    @classmethod
    def for_subnet(cls, choice: Block, shapes: SourceShapes, live: LiveFlags,
                   embedding_dim: int, pc_rows: int, layer_norm: bool) -> "ChoiceBlock":
        """A block holding only what `choice` uses when `live` parts reach the logit."""
        dense_live, branch_live, output_live = live
        widths = shapes.dense_widths
        width = choice.dense_dim
        dense_ops = choice.dense_ops if dense_live else ()
        reads_concat = any(op in ("fc", "dot_product") for op in dense_ops)
        reads_binary = any(op in ("gating", "sum") for op in dense_ops)
        reads_sparse = branch_live or "dot_product" in dense_ops
        layouts = BlockLayouts(
            concat=DenseLayout.of({s: widths[s] for s in choice.dense_sources} if reads_concat
                                  else {}),
            left=DenseLayout.of({choice.dense_left: widths[choice.dense_left]} if reads_binary
                                else {}),
            right=DenseLayout.of({choice.dense_right: widths[choice.dense_right]}
                                 if reads_binary else {}),
            sparse=SparseLayout.of({s: shapes.sparse_rows[s] for s in choice.sparse_sources}
                                   if reads_sparse else {}),
        )
        projections = {"gating_right": widths[choice.dense_right] != width,
                       "sum_left": widths[choice.dense_left] != width,
                       "sum_right": widths[choice.dense_right] != width}
        return cls(dense_ops, choice.sparse_ops if branch_live else (), layouts, width,
                   choice.sparse_dim, embedding_dim,
                   pc_rows if output_live and choice.project_concat else 0,
                   dense_live and choice.fm, layer_norm, projections)

    def _plan(self, choice: Block, shapes: SourceShapes, live: LiveFlags) -> _Plan:
        dense_live, branch_live, _ = live
        ops = choice.dense_ops if dense_live else ()
        widths = shapes.dense_widths
        binary = any(op in ("gating", "sum") for op in ops)
        return _Plan(
            concat=(self.layouts.concat.ranges({s: widths[s] for s in choice.dense_sources})
                    if any(op in ("fc", "dot_product") for op in ops) else ()),
            left=(self.layouts.left.ranges({choice.dense_left: widths[choice.dense_left]})
                  if binary else ()),
            right=(self.layouts.right.ranges({choice.dense_right: widths[choice.dense_right]})
                   if binary else ()),
            sparse=(self.layouts.sparse.ranges({s: shapes.sparse_rows[s]
                                                for s in choice.sparse_sources})
                    if branch_live or "dot_product" in ops else ()),
        )

    def forward(self, choice: Block, shapes: SourceShapes, live: LiveFlags,
                dense_inputs: Tensors, sparse_inputs: Tensors
                ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Outputs of this block under `choice`; parts that are not `live` are None."""
        dense_live, branch_live, output_live = live
        plan = self._plan(choice, shapes, live)
        width, rows = choice.dense_dim, choice.sparse_dim
        x_concat = x_sparse = None
        if dense_live and choice.reads_concat_dense():
            x_concat = torch.cat([dense_inputs[s] for s in choice.dense_sources], dim=1)
        if branch_live or (dense_live and "dot_product" in choice.dense_ops):
            x_sparse = torch.cat([sparse_inputs[s] for s in choice.sparse_sources], dim=1)

        dense_out: Optional[torch.Tensor] = None
        if dense_live:
            for name in choice.dense_ops:
                op = self.dense_ops[name]
                if name == "fc":
                    term = op(x_concat, width, plan.concat)
                elif name == "dot_product":
                    term = op(x_concat, plan.concat, x_sparse, plan.sparse, width)
                else:
                    term = op(dense_inputs[choice.dense_left], plan.left,
                              dense_inputs[choice.dense_right], plan.right, width)
                dense_out = term if dense_out is None else dense_out + term

        branch: Optional[torch.Tensor] = None
        if branch_live:
            for name in choice.sparse_ops:
                term = self.sparse_ops[name](x_sparse, plan.sparse, rows)
                branch = term if branch is None else branch + term
            if dense_live and choice.fm:
                dense_out = dense_out + self.fm(branch, width)

        sparse_out = None
        if output_live:
            sparse_out = branch
            if choice.project_concat:
                sparse_out = torch.cat([branch, self.project_concat(dense_out)], dim=1)
        return dense_out, sparse_out

    def sliced_state(self, choice: Block, shapes: SourceShapes, live: LiveFlags) -> State:
        """The state dict of `for_subnet(choice, ...)` holding this block's weights on the slice."""
        dense_live, branch_live, output_live = live
        plan = self._plan(choice, shapes, live)
        widths = shapes.dense_widths
        width, rows = choice.dense_dim, choice.sparse_dim
        state: State = {}

        def add(prefix: str, part: State) -> None:
            state.update({f"{prefix}.{name}": value for name, value in part.items()})

        for name in choice.dense_ops if dense_live else ():
            op = self.dense_ops[name]
            if name == "fc":
                add(f"dense_ops.{name}", op.sliced_state(width, plan.concat))
            elif name == "dot_product":
                add(f"dense_ops.{name}", op.sliced_state(plan.concat, plan.sparse, width))
            elif name == "gating":
                add(f"dense_ops.{name}", op.sliced_state(plan.left, widths[choice.dense_right],
                                                         plan.right, width))
            else:
                add(f"dense_ops.{name}", op.sliced_state(widths[choice.dense_left], plan.left,
                                                         widths[choice.dense_right], plan.right,
                                                         width))
        for name in choice.sparse_ops if branch_live else ():
            add(f"sparse_ops.{name}", self.sparse_ops[name].sliced_state(plan.sparse, rows))
        if output_live and choice.project_concat:
            add("project_concat", self.project_concat.sliced_state(width))
        if dense_live and choice.fm:
            add("fm", self.fm.sliced_state(width))
        return state
