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

from nasrec_torchrec.nn.elastic import DenseLayout, SparseLayout
from nasrec_torchrec.nn.operators import (FM, OperatorInputs, OperatorPlan, OperatorShape,
                                          ProjectConcat, State, build_operator)
from nasrec_torchrec.space.architecture import Architecture, Block
from nasrec_torchrec.space.operators import DENSE, DENSE_CONCAT, DENSE_PAIR, SPARSE, SPARSE_CONCAT

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
    """Input layouts of a block's weights: the dense concat, X1 and X2 (`dense_left`,
    `dense_right`), and the sparse concat."""

    concat: DenseLayout
    left: DenseLayout
    right: DenseLayout
    sparse: SparseLayout


class ChoiceBlock(nn.Module):
    """One choice block: `(dense inputs, sparse inputs) -> (dense [B, d], sparse [B, R, E])`.

    Args:
        dense_ops, sparse_ops: the operators built (names of `space.operators.OPERATORS`).
        layouts: the input layouts of the weights.
        dense_max: largest dense width d; rows_max: largest sparse branch rows n.
        embedding_dim: E; pc_rows: Project-Concat rows (0: no Project-Concat built).
        fm: build the FM operator; layer_norm: LayerNorm in every operator.
        batch_norm: BatchNorm over the d units of the dense operators and the FM instead of
            their LayerNorm (`ElasticBatchNorm`).
        project_left, project_right: build the projections of X1 / X2 to width d (a subnet
            omits identities).
    """

    def __init__(self, dense_ops: tuple[str, ...], sparse_ops: tuple[str, ...],
                 layouts: BlockLayouts, dense_max: int, rows_max: int, embedding_dim: int,
                 pc_rows: int, fm: bool, layer_norm: bool, project_left: bool = True,
                 project_right: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        self.layouts = layouts
        shape = OperatorShape(
            concat_width=layouts.concat.width, left_width=layouts.left.width,
            right_width=layouts.right.width, sparse_rows=layouts.sparse.rows,
            dense_max=dense_max, rows_max=rows_max, embedding_dim=embedding_dim,
            layer_norm=layer_norm, project_left=project_left, project_right=project_right,
            batch_norm=batch_norm)
        self.dense_ops = nn.ModuleDict()
        for name in dense_ops:
            self.dense_ops[name] = build_operator(name, DENSE, shape)
        self.sparse_ops = nn.ModuleDict()
        for name in sparse_ops:
            self.sparse_ops[name] = build_operator(name, SPARSE, shape)
        self.project_concat = ProjectConcat(dense_max, pc_rows, embedding_dim) if pc_rows else None
        self.fm = FM(embedding_dim, dense_max, layer_norm, batch_norm) if fm else None

    @classmethod
    def for_supernet(cls, index: int, dense_ops: tuple[str, ...], sparse_ops: tuple[str, ...],
                     dense_in_features: int, num_sparse_features: int, dense_max: int,
                     rows_max: int, embedding_dim: int, pc_rows: int, fm: bool,
                     layer_norm: bool, batch_norm: bool = False) -> "ChoiceBlock":
        """Block `index` of a supernet: every operator over every earlier source's slot."""
        dense = DenseLayout.of({0: dense_in_features, **{k: dense_max for k in range(1, index)}})
        sparse = SparseLayout.of({0: (num_sparse_features, 0),
                                  **{k: (rows_max, pc_rows) for k in range(1, index)}})
        return cls(dense_ops, sparse_ops, BlockLayouts(dense, dense, dense, sparse), dense_max,
                   rows_max, embedding_dim, pc_rows, fm, layer_norm, batch_norm=batch_norm)

    @classmethod
    def for_subnet(cls, choice: Block, shapes: SourceShapes, live: LiveFlags,
                   embedding_dim: int, pc_rows: int, layer_norm: bool,
                   batch_norm: bool = False) -> "ChoiceBlock":
        """A block holding only what `choice` uses when `live` parts reach the logit."""
        dense_live, branch_live, output_live = live
        widths = shapes.dense_widths
        width = choice.dense_dim
        reads = choice.inputs_read(dense_live, branch_live)
        pair = DENSE_PAIR in reads
        layouts = BlockLayouts(
            concat=DenseLayout.of({s: widths[s] for s in choice.dense_sources}
                                  if DENSE_CONCAT in reads else {}),
            left=DenseLayout.of({choice.dense_left: widths[choice.dense_left]} if pair else {}),
            right=DenseLayout.of({choice.dense_right: widths[choice.dense_right]} if pair
                                 else {}),
            sparse=SparseLayout.of({s: shapes.sparse_rows[s] for s in choice.sparse_sources}
                                   if SPARSE_CONCAT in reads else {}),
        )
        return cls(choice.dense_ops if dense_live else (),
                   choice.sparse_ops if branch_live else (), layouts, width,
                   choice.sparse_dim, embedding_dim,
                   pc_rows if output_live and choice.project_concat else 0,
                   dense_live and choice.fm, layer_norm,
                   project_left=widths[choice.dense_left] != width,
                   project_right=widths[choice.dense_right] != width, batch_norm=batch_norm)

    def _plan(self, choice: Block, shapes: SourceShapes, reads: frozenset[str]) -> OperatorPlan:
        """The ranges and sizes the operators use for `choice` (reading the inputs `reads`)."""
        widths = shapes.dense_widths
        pair = DENSE_PAIR in reads
        return OperatorPlan(
            width=choice.dense_dim,
            rows=choice.sparse_dim,
            concat=(self.layouts.concat.ranges({s: widths[s] for s in choice.dense_sources})
                    if DENSE_CONCAT in reads else ()),
            left=(self.layouts.left.ranges({choice.dense_left: widths[choice.dense_left]})
                  if pair else ()),
            right=(self.layouts.right.ranges({choice.dense_right: widths[choice.dense_right]})
                   if pair else ()),
            sparse=(self.layouts.sparse.ranges({s: shapes.sparse_rows[s]
                                                for s in choice.sparse_sources})
                    if SPARSE_CONCAT in reads else ()),
            left_width=widths[choice.dense_left],
            right_width=widths[choice.dense_right],
        )

    def forward(self, choice: Block, shapes: SourceShapes, live: LiveFlags,
                dense_inputs: Tensors, sparse_inputs: Tensors
                ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Outputs of this block under `choice`; parts that are not `live` are None."""
        dense_live, branch_live, output_live = live
        reads = choice.inputs_read(dense_live, branch_live)
        plan = self._plan(choice, shapes, reads)
        x_concat = x_sparse = x_left = x_right = None
        if DENSE_CONCAT in reads:
            x_concat = torch.cat([dense_inputs[s] for s in choice.dense_sources], dim=1)
        if SPARSE_CONCAT in reads:
            x_sparse = torch.cat([sparse_inputs[s] for s in choice.sparse_sources], dim=1)
        if DENSE_PAIR in reads:
            x_left, x_right = dense_inputs[choice.dense_left], dense_inputs[choice.dense_right]
        inputs = OperatorInputs(plan, concat=x_concat, left=x_left, right=x_right,
                                sparse=x_sparse)

        dense_out: Optional[torch.Tensor] = None
        if dense_live:
            for name in choice.dense_ops:
                term = self.dense_ops[name](inputs)
                dense_out = term if dense_out is None else dense_out + term

        branch: Optional[torch.Tensor] = None
        if branch_live:
            for name in choice.sparse_ops:
                term = self.sparse_ops[name](inputs)
                branch = term if branch is None else branch + term
            if dense_live and choice.fm:
                dense_out = dense_out + self.fm(branch, plan.width)

        sparse_out = None
        if output_live:
            sparse_out = branch
            if choice.project_concat:
                sparse_out = torch.cat([branch, self.project_concat(dense_out)], dim=1)
        return dense_out, sparse_out

    def sliced_state(self, choice: Block, shapes: SourceShapes, live: LiveFlags) -> State:
        """The state dict of `for_subnet(choice, ...)` holding this block's weights on the slice."""
        dense_live, branch_live, output_live = live
        plan = self._plan(choice, shapes, choice.inputs_read(dense_live, branch_live))
        state: State = {}

        def add(prefix: str, part: State) -> None:
            state.update({f"{prefix}.{name}": value for name, value in part.items()})

        for name in choice.dense_ops if dense_live else ():
            add(f"dense_ops.{name}", self.dense_ops[name].sliced_state(plan))
        for name in choice.sparse_ops if branch_live else ():
            add(f"sparse_ops.{name}", self.sparse_ops[name].sliced_state(plan))
        if output_live and choice.project_concat:
            add("project_concat", self.project_concat.sliced_state(plan.width))
        if dense_live and choice.fm:
            add("fm", self.fm.sliced_state(plan.width))
        return state
