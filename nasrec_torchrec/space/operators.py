"""The operator table: every operator a block can use, as plain values (no torch).

One `OperatorSpec` per operator says which branch it belongs to and which of the block's
inputs it reads; validation, liveness, the canonical form, search spaces, mutation and
sampling read this table, and `nn.operators.OPERATOR_CLASSES` holds the module of each name.
The operator `fm` (FM over the block's sparse input) is not the block-level flag `Block.fm`
of the official spaces (FM over the block's own sparse branch output); that flag and
Project-Concat (`Block.project_concat`) are not operators of the table. The semantics of each
operator are in docs/search_space.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from nasrec_torchrec.errors import NASRecError

DENSE = "dense"
SPARSE = "sparse"

# The inputs of a block an operator can read (docs/search_space.md, "Inputs of a block").
DENSE_CONCAT = "dense_concat"  # the dense outputs of `dense_sources`, concatenated
DENSE_PAIR = "dense_pair"  # the dense outputs of `dense_left` (X1) and `dense_right` (X2)
SPARSE_CONCAT = "sparse_concat"  # the sparse outputs of `sparse_sources`, concatenated by rows
INPUTS: tuple[str, ...] = (DENSE_CONCAT, DENSE_PAIR, SPARSE_CONCAT)


@dataclass(frozen=True)
class OperatorSpec:
    """What the search space knows of one operator.

    Args:
        name: the name in architectures, search spaces and the nn registry.
        branch: `"dense"` (output `[B, dense_dim]`, summed into the dense output) or
            `"sparse"` (output `[B, sparse_dim, E]`, summed into the sparse branch).
        inputs: the block inputs it reads (a subset of `INPUTS`).

    A dense operator's output width is the block's `dense_dim`, a sparse operator's rows its
    `sparse_dim`: the sizes searched over the space's `dense_dims` / `sparse_dims`.
    """

    name: str
    branch: str
    inputs: frozenset[str]

    def __post_init__(self) -> None:
        if self.branch not in (DENSE, SPARSE):
            raise ValueError(f"operator {self.name!r}: branch {self.branch!r}")
        if not self.inputs or not self.inputs <= set(INPUTS):
            raise ValueError(f"operator {self.name!r}: inputs {sorted(self.inputs)}")


# The table. Order matters: it is the canonical order of a block's operators.
OPERATORS: dict[str, OperatorSpec] = {spec.name: spec for spec in (
    OperatorSpec("fc", DENSE, frozenset({DENSE_CONCAT})),
    OperatorSpec("gating", DENSE, frozenset({DENSE_PAIR})),
    OperatorSpec("sum", DENSE, frozenset({DENSE_PAIR})),
    OperatorSpec("dot_product", DENSE, frozenset({DENSE_CONCAT, SPARSE_CONCAT})),
    OperatorSpec("fm", DENSE, frozenset({SPARSE_CONCAT})),
    OperatorSpec("cross", DENSE, frozenset({DENSE_CONCAT})),
    OperatorSpec("flat_fc", DENSE, frozenset({SPARSE_CONCAT})),
    OperatorSpec("embed_fc", SPARSE, frozenset({SPARSE_CONCAT})),
    OperatorSpec("attention", SPARSE, frozenset({SPARSE_CONCAT})),
)}


def branch_operators(branch: str) -> tuple[str, ...]:
    """The names of the operators of `branch` ("dense" or "sparse"), in table order."""
    return tuple(name for name, spec in OPERATORS.items() if spec.branch == branch)


DENSE_OPS: tuple[str, ...] = branch_operators(DENSE)
SPARSE_OPS: tuple[str, ...] = branch_operators(SPARSE)


def operator_spec(name: str) -> OperatorSpec:
    """The spec of operator `name`; an unknown name raises `NASRecError` naming it."""
    try:
        return OPERATORS[name]
    except (KeyError, TypeError):
        raise NASRecError(f"unknown operator {name!r}; operators: {list(OPERATORS)}") from None


def inputs_read(ops: Iterable[str]) -> frozenset[str]:
    """The block inputs the operators `ops` read, together."""
    read: set[str] = set()
    for name in ops:
        read |= operator_spec(name).inputs
    return frozenset(read)
