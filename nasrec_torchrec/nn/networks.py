"""The supernet (every architecture of a space, weights shared by slicing) and `NASRecNet`
(one architecture, only what it uses), which compute the same function on any path."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.batch_norm import plain_batch_norm
from nasrec_torchrec.nn.block import ChoiceBlock, SourceShapes
from nasrec_torchrec.nn.elastic import ElasticLinear, Ranges, SparseLayout, full_range
from nasrec_torchrec.space.architecture import Architecture, Liveness


class _BlockStack(nn.Module):
    """Blocks `"1".."N"` (absent when dead) and the final FC on the last block's outputs.

    The final FC's input is `[dense (slot of `head_dense_width`) | sparse rows flattened
    (slot of `head_sparse_rows` = (branch rows, Project-Concat rows))]`.
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 layer_norm: bool, dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise NASRecError(f"dropout must be in [0, 1), got {dropout}")
        self.dense_in_features: int = dense_in_features
        self.num_sparse_features: int = num_sparse_features
        self.embedding_dim: int = embedding_dim
        self.layer_norm: bool = layer_norm
        self.batch_norm: bool = batch_norm
        self.dropout: float = dropout
        self.blocks = nn.ModuleDict()

    def _run(self, dense: torch.Tensor, sparse: torch.Tensor, architecture: Architecture,
             live: Liveness) -> torch.Tensor:
        shapes = SourceShapes.of(architecture, self.dense_in_features, self.num_sparse_features)
        dense_outputs: list[Optional[torch.Tensor]] = [dense]
        sparse_outputs: list[Optional[torch.Tensor]] = [sparse]
        for index in range(1, architecture.num_blocks + 1):
            flags = (live.dense[index - 1], live.sparse_branch[index - 1],
                     live.sparse_output[index - 1])
            if any(flags):
                dense_out, sparse_out = self.blocks[str(index)](
                    architecture.block(index), shapes, flags, dense_outputs, sparse_outputs)
            else:
                dense_out, sparse_out = None, None
            if self.dropout and dense_out is not None:
                dense_out = nn.functional.dropout(dense_out, self.dropout, self.training)
            dense_outputs.append(dense_out)
            sparse_outputs.append(sparse_out)
        dense_last, sparse_last = dense_outputs[-1], sparse_outputs[-1]
        features = torch.cat([dense_last, sparse_last.flatten(1)], dim=1)
        return self.head(features, 1, self._head_ranges(shapes)).squeeze(-1)

    def _build_head(self, dense_width: int, sparse_rows: tuple[int, int]) -> None:
        self.head_dense_width: int = dense_width
        self.head_sparse_layout = SparseLayout.of({0: sparse_rows})
        self.head = ElasticLinear(dense_width + self.head_sparse_layout.rows * self.embedding_dim, 1)

    def _head_ranges(self, shapes: SourceShapes) -> Ranges:
        """The head's input columns for the last block's actual shapes."""
        rows = self.head_sparse_layout.ranges({0: shapes.sparse_rows[-1]})
        dense = full_range(shapes.dense_widths[-1])
        return dense + tuple((self.head_dense_width + start * self.embedding_dim,
                              count * self.embedding_dim) for start, count in rows)


class Supernet(_BlockStack):
    """Every architecture of a search space in one module, weights shared by slicing.

    On any path, `supernet(dense, sparse, architecture)` equals
    `NASRecNet.from_supernet(supernet, architecture)(dense, sparse)`, and it costs what that
    subnet costs (only the live slices are computed).

    Args:
        space: a `SearchSpace` (its blocks, operators, dims, Project-Concat and FM options).
        dense_in_features: Dn; num_sparse_features: F; embedding_dim: E.
        layer_norm: LayerNorm in every operator (on for supernet training, as in the paper).
        batch_norm: BatchNorm (`ElasticBatchNorm`) over the d units of every dense operator
            and the FM instead of LayerNorm, as `NASRecNet(batch_norm=True)` has; the sparse
            operators keep LayerNorm if `layer_norm`. Its running statistics are shared by
            every path, so they are no subnet's: recalibrate a materialised subnet's
            (`nn.batch_norm.recalibrate_batch_norm`) before evaluating it. Under several
            ranks each rank normalises with its local batch and keeps its own running
            statistics (not synchronised).

    Example::

        supernet = Supernet(get_space("nasrec-small"), 13, 26)
        logits = supernet(dense, sparse, architecture)  # [B, 13], [B, 26, 16] -> [B]
    """

    def __init__(self, space, dense_in_features: int, num_sparse_features: int,
                 embedding_dim: int = 16, layer_norm: bool = True,
                 batch_norm: bool = False) -> None:
        super().__init__(dense_in_features, num_sparse_features, embedding_dim, layer_norm,
                         batch_norm=batch_norm)
        self.space = space
        dense_max = max(space.dense_dims)
        pc_rows = space.project_concat_rows if space.project_concat_searchable else 0
        for index in range(1, space.num_blocks + 1):
            self.blocks[str(index)] = ChoiceBlock.for_supernet(
                index, tuple(space.dense_ops), tuple(space.sparse_ops), dense_in_features,
                num_sparse_features, dense_max, max(space.sparse_dims), embedding_dim, pc_rows,
                space.fm_searchable, layer_norm, batch_norm)
        self._build_head(dense_max, (max(space.sparse_dims), pc_rows))
        self._architecture: Optional[Architecture] = None
        self._liveness: dict[Architecture, Liveness] = {}

    def set_architecture(self, architecture: Architecture) -> None:
        """The path `forward` runs when called without an architecture (e.g. in a pipeline)."""
        self._architecture = architecture

    def liveness(self, architecture: Architecture) -> Liveness:
        """Validated liveness of `architecture` (cached for the most recent ones)."""
        live = self._liveness.get(architecture)
        if live is None:
            architecture.validate(self.space)
            live = architecture.liveness()
            if len(self._liveness) > 4096:
                self._liveness.clear()
            self._liveness[architecture] = live
        return live

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor,
                architecture: Optional[Architecture] = None) -> torch.Tensor:
        """`dense [B, Dn], sparse [B, F, E] -> logits [B]` on `architecture` (or the set path)."""
        architecture = architecture or self._architecture
        if architecture is None:
            raise NASRecError("Supernet.forward: no architecture given and none set "
                              "(call set_architecture or pass one)")
        return self._run(dense, sparse, architecture, self.liveness(architecture))


class NASRecNet(_BlockStack):
    """A standalone model of one architecture: only its live blocks and operators, exact sizes.

    Args:
        architecture: the architecture to build (dead blocks are not built).
        dense_in_features: Dn; num_sparse_features: F; embedding_dim: E.
        layer_norm: LayerNorm in every operator.
        dropout: dropout on every block's dense output in training mode (0: none; the
            supernet has none, so a subnet equals its supernet path in eval mode).
        batch_norm: BatchNorm (`nn.BatchNorm1d`) over the d units of every dense operator
            and the FM instead of LayerNorm; the sparse operators keep LayerNorm if
            `layer_norm`.

    Example::

        net = NASRecNet(architecture, dense_in_features=13, num_sparse_features=26)
        logits = net(dense, sparse)  # [B, 13], [B, 26, 16] -> [B]
    """

    def __init__(self, architecture: Architecture, dense_in_features: int,
                 num_sparse_features: int, embedding_dim: int = 16,
                 layer_norm: bool = True, dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__(dense_in_features, num_sparse_features, embedding_dim, layer_norm,
                         dropout, batch_norm)
        self.architecture = architecture
        self.live = architecture.liveness()
        shapes = SourceShapes.of(architecture, dense_in_features, num_sparse_features)
        for index in range(1, architecture.num_blocks + 1):
            flags = self._flags(index)
            if any(flags):
                self.blocks[str(index)] = ChoiceBlock.for_subnet(
                    architecture.block(index), shapes, flags, embedding_dim,
                    architecture.project_concat_rows, layer_norm, batch_norm)
        if batch_norm:
            plain_batch_norm(self.blocks)
        self._build_head(architecture.blocks[-1].dense_dim, shapes.sparse_rows[-1])

    def _flags(self, index: int) -> tuple[bool, bool, bool]:
        return (self.live.dense[index - 1], self.live.sparse_branch[index - 1],
                self.live.sparse_output[index - 1])

    @classmethod
    def from_supernet(cls, supernet: Supernet, architecture: Architecture) -> "NASRecNet":
        """The subnet of `supernet` on `architecture`, with the inherited (sliced) weights
        (and, with BatchNorm, the sliced running statistics)."""
        supernet.liveness(architecture)  # validates against the supernet's space
        net = cls(architecture, supernet.dense_in_features, supernet.num_sparse_features,
                  supernet.embedding_dim, supernet.layer_norm, batch_norm=supernet.batch_norm)
        shapes = SourceShapes.of(architecture, supernet.dense_in_features,
                                 supernet.num_sparse_features)
        for name, block in net.blocks.items():
            index = int(name)
            block.load_state_dict(supernet.blocks[name].sliced_state(
                architecture.block(index), shapes, net._flags(index)))
        net.head.load_state_dict(supernet.head.sliced_state(1, supernet._head_ranges(shapes)))
        return net.to(supernet.head.weight.device)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """`dense [B, Dn], sparse [B, F, E] -> logits [B]`."""
        return self._run(dense, sparse, self.architecture, self.live)
