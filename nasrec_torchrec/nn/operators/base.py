"""What every operator of the table shares: its build sizes, what it reads, its registry.

An operator is an `Operator` subclass registered under its name in the space's operator table
(`space.operators.OPERATORS`). The block builds it with `build(OperatorShape)` at the largest
size of its position, and runs it with ONE signature: `forward(OperatorInputs) -> Tensor` and
`sliced_state(OperatorPlan) -> State`, whatever inputs it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import nn

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import ElasticBatchNorm, ElasticLayerNorm, Ranges
from nasrec_torchrec.space.operators import operator_spec

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class OperatorShape:
    """The largest inputs and outputs an operator is built for.

    Args:
        concat_width: width of the dense concat (all slots of `dense_sources`).
        left_width, right_width: widths of X1 / X2 (`dense_left`, `dense_right`).
        sparse_rows: rows of the sparse concat (all slots of `sparse_sources`).
        dense_max: largest dense output width d; rows_max: largest sparse output rows n.
        embedding_dim: E; layer_norm: LayerNorm after the operator.
        batch_norm: BatchNorm (`ElasticBatchNorm`) over the d units of the dense operators
            in place of their LayerNorm (the sparse operators keep `layer_norm`'s).
        project_left, project_right: build the FC that maps X1 / X2 to width d (a subnet
            whose X1 / X2 already has width d omits it: the identity is used).
    """

    concat_width: int
    left_width: int
    right_width: int
    sparse_rows: int
    dense_max: int
    rows_max: int
    embedding_dim: int
    layer_norm: bool
    project_left: bool = True
    project_right: bool = True
    batch_norm: bool = False


@dataclass(frozen=True)
class OperatorPlan:
    """What the operators of a block use on one path (no tensors).

    Args:
        width: the dense output width d; rows: the sparse output rows n.
        concat, left, right, sparse: weight-column (or row) ranges of the dense concat, of X1,
            of X2 and of the sparse concat (empty when the block does not read them).
        left_width, right_width: actual widths of X1 and X2.
    """

    width: int = 0
    rows: int = 0
    concat: Ranges = ()
    left: Ranges = ()
    right: Ranges = ()
    sparse: Ranges = ()
    left_width: int = 0
    right_width: int = 0


@dataclass(frozen=True)
class OperatorInputs:
    """The inputs of a block on one path: `plan` and the tensors the operators read.

    Args:
        plan: the ranges and sizes in use.
        concat: the dense concat `[B, Σ widths]`; left, right: X1 `[B, w1]`, X2 `[B, w2]`;
        sparse: the sparse concat `[B, Σ rows, E]` (each None when not read).
    """

    plan: OperatorPlan
    concat: Optional[torch.Tensor] = None
    left: Optional[torch.Tensor] = None
    right: Optional[torch.Tensor] = None
    sparse: Optional[torch.Tensor] = None


class Operator(nn.Module):
    """An operator of the table: built at its largest size, run on a slice of it.

    Subclasses implement `build`, `forward(inputs) -> [B, d]` (dense operators) or
    `[B, n, E]` (sparse operators), and `sliced_state(plan)`: the state dict of the same
    class built at the exact sizes of `plan` (`build` of the subnet's shape).
    """

    @classmethod
    def build(cls, shape: OperatorShape) -> "Operator":
        """The operator at the largest sizes of `shape`."""
        raise NotImplementedError

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        raise NotImplementedError

    def sliced_state(self, plan: OperatorPlan) -> State:
        """The exact-size weights of this operator on `plan`."""
        raise NotImplementedError


# name -> class, filled by `register_operator` when the operator modules are imported.
OPERATOR_CLASSES: dict[str, type[Operator]] = {}


def register_operator(name: str) -> Callable[[type[Operator]], type[Operator]]:
    """Class decorator: the nn module of operator `name` of the space's table."""
    operator_spec(name)  # a name missing from the table is an error

    def register(cls: type[Operator]) -> type[Operator]:
        if name in OPERATOR_CLASSES:
            raise NASRecError(f"operator {name!r}: registered twice "
                              f"({OPERATOR_CLASSES[name].__name__}, {cls.__name__})")
        OPERATOR_CLASSES[name] = cls
        return cls

    return register


def build_operator(name: str, branch: str, shape: OperatorShape) -> Operator:
    """The module of operator `name` in a block's `branch` ("dense" or "sparse").

    An unknown name, an operator of the other branch, or one without a module raises
    `NASRecError` naming it.
    """
    spec = operator_spec(name)
    if spec.branch != branch:
        raise NASRecError(f"operator {name!r} is a {spec.branch} operator, not a {branch} one")
    if name not in OPERATOR_CLASSES:
        raise NASRecError(f"operator {name!r} has no nn module (register_operator)")
    return OPERATOR_CLASSES[name].build(shape)


def prefixed(prefix: str, state: State) -> State:
    """`state` with every key under `prefix.`."""
    return {f"{prefix}.{name}": value for name, value in state.items()}


Norm = Union[ElasticLayerNorm, ElasticBatchNorm]


def dense_norm(width: int, layer_norm: bool, batch_norm: bool) -> Optional[Norm]:
    """The norm over a dense operator's `width` units: BatchNorm when `batch_norm`, else
    LayerNorm when `layer_norm`, else none."""
    if batch_norm:
        return ElasticBatchNorm(width)
    return ElasticLayerNorm(width) if layer_norm else None


def norm_state(norm: Optional[Norm], width: int) -> State:
    """The exact-size state of an optional norm at `width` (under `norm.`)."""
    return {} if norm is None else prefixed("norm", norm.sliced_state(width))
