"""Checks that an architecture belongs to a search space (`Architecture.validate`)."""

from __future__ import annotations

from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture, Block
from nasrec_torchrec.space.operators import OPERATORS
from nasrec_torchrec.space.search_space import SearchSpace


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
    for number, block in enumerate(architecture.blocks, start=1):
        _validate_block(number, block, space)


def _validate_block(number: int, block: Block, space: SearchSpace) -> None:
    def fail(field: str, message: str) -> NASRecError:
        return NASRecError(f"block {number}: field '{field}': {message}")

    sources = list(range(number))
    for field in ("dense_sources", "sparse_sources"):
        chosen = getattr(block, field)
        if not chosen:
            raise fail(field, "no source; a block reads at least one")
        for source in chosen:
            if not _is_int(source) or source not in sources:
                raise fail(field, f"{source!r} is not one of {sources}")
        if space.max_connections is not None and len(chosen) > space.max_connections:
            raise fail(field, f"{len(chosen)} sources, at most {space.max_connections} allowed")
    for field in ("dense_left", "dense_right"):
        source = getattr(block, field)
        if not _is_int(source) or source not in sources:
            raise fail(field, f"{source!r} is not one of {sources}")
    for field, allowed in (("dense_ops", space.dense_ops), ("sparse_ops", space.sparse_ops)):
        ops = getattr(block, field)
        if not ops:
            raise fail(field, "no operator; a branch needs at least one")
        for op in ops:
            if op not in allowed:
                unknown = "" if op in OPERATORS else " (no such operator)"
                raise fail(field, f"{op!r} is not one of {list(allowed)}{unknown}")
    for field, allowed in (("dense_dim", space.dense_dims), ("sparse_dim", space.sparse_dims)):
        dim = getattr(block, field)
        if not _is_int(dim) or dim not in allowed:
            raise fail(field, f"{dim!r} is not one of {list(allowed)}")
    for field, searchable in (("project_concat", space.project_concat_searchable),
                              ("fm", space.fm_searchable)):
        flag = getattr(block, field)
        if not isinstance(flag, bool):
            raise fail(field, f"{flag!r} is not true or false")
        if flag and not searchable:
            raise fail(field, f"on, but space '{space.name}' does not search it")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
