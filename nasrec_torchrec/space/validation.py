"""Checks of an architecture's genes: against a search space (`Architecture.validate`), or
against what any space admits (`validate_structure`, for an architecture read from a file
before any model is built from it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture, Block
from nasrec_torchrec.space.operators import DENSE_OPS, OPERATORS, SPARSE_OPS
from nasrec_torchrec.space.search_space import SearchSpace


@dataclass(frozen=True)
class _Rules:
    """The genes a block may take: a space's choices, or (dims None) any positive size."""

    name: str
    dense_ops: tuple[str, ...]
    sparse_ops: tuple[str, ...]
    dense_dims: Optional[tuple[int, ...]] = None
    sparse_dims: Optional[tuple[int, ...]] = None
    project_concat: bool = True
    fm: bool = True
    max_connections: Optional[int] = None

    @classmethod
    def of(cls, space: SearchSpace) -> "_Rules":
        return cls(space.name, space.dense_ops, space.sparse_ops, space.dense_dims,
                   space.sparse_dims, space.project_concat_searchable, space.fm_searchable,
                   space.max_connections)


_ANY_SPACE = _Rules("any", DENSE_OPS, SPARSE_OPS)


def validate_architecture(architecture: Architecture, space: SearchSpace) -> None:
    """Raise `NASRecError` naming the block and field of the first gene `space` does not allow."""
    if architecture.num_blocks != space.num_blocks:
        raise NASRecError(
            f"field 'blocks': {architecture.num_blocks} blocks, space '{space.name}' has "
            f"{space.num_blocks}")
    if architecture.project_concat_rows != space.project_concat_rows:
        raise NASRecError(
            f"field 'project_concat_rows': {architecture.project_concat_rows!r} != "
            f"{space.project_concat_rows} of space '{space.name}'")
    rules = _Rules.of(space)
    for number, block in enumerate(architecture.blocks, start=1):
        _validate_block(number, block, rules)


def validate_structure(architecture: Architecture, source: str = "architecture") -> None:
    """Raise `NASRecError` naming `source`, the block and the field of the first gene no
    space admits: an unknown operator or one of the other branch, a source that is not the
    inputs (0) or an earlier block, a size that is not a positive integer, a flag that is not
    true or false."""
    try:
        if not architecture.num_blocks:
            raise NASRecError("field 'blocks': no block; an architecture has at least one")
        rows = architecture.project_concat_rows
        if not _is_int(rows) or rows < 1:
            raise NASRecError(f"field 'project_concat_rows': {rows!r} is not a positive integer")
        for number, block in enumerate(architecture.blocks, start=1):
            _validate_block(number, block, _ANY_SPACE)
    except NASRecError as error:
        raise NASRecError(f"{source}: {error}") from None


def _validate_block(number: int, block: Block, rules: _Rules) -> None:
    def fail(field: str, message: str) -> NASRecError:
        return NASRecError(f"block {number}: field '{field}': {message}")

    sources = list(range(number))
    where = "a block reads the inputs (0) or an earlier block"
    for field in ("dense_sources", "sparse_sources"):
        chosen = getattr(block, field)
        if not chosen:
            raise fail(field, "no source; a block reads at least one")
        for source in chosen:
            if not _is_int(source) or source not in sources:
                raise fail(field, f"{source!r} is not one of {sources} ({where})")
        if rules.max_connections is not None and len(chosen) > rules.max_connections:
            raise fail(field, f"{len(chosen)} sources, at most {rules.max_connections} allowed")
    for field in ("dense_left", "dense_right"):
        source = getattr(block, field)
        if not _is_int(source) or source not in sources:
            raise fail(field, f"{source!r} is not one of {sources} ({where})")
    for field, allowed in (("dense_ops", rules.dense_ops), ("sparse_ops", rules.sparse_ops)):
        ops = getattr(block, field)
        if not ops:
            raise fail(field, "no operator; a branch needs at least one")
        for op in ops:
            if op not in allowed:
                unknown = "" if op in OPERATORS else " (no such operator)"
                raise fail(field, f"{op!r} is not one of {list(allowed)}{unknown}")
    for field, dims in (("dense_dim", rules.dense_dims), ("sparse_dim", rules.sparse_dims)):
        dim = getattr(block, field)
        if dims is None and (not _is_int(dim) or dim < 1):
            raise fail(field, f"{dim!r} is not a positive integer")
        if dims is not None and (not _is_int(dim) or dim not in dims):
            raise fail(field, f"{dim!r} is not one of {list(dims)}")
    for field, searchable in (("project_concat", rules.project_concat), ("fm", rules.fm)):
        flag = getattr(block, field)
        if not isinstance(flag, bool):
            raise fail(field, f"{flag!r} is not true or false")
        if flag and not searchable:
            raise fail(field, f"on, but space '{rules.name}' does not search it")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
