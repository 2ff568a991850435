"""Mutations for evolutionary search (paper §4.4): re-sample one gene of one block.

A mutation picks a block uniformly (among blocks with any gene to change), then a kind
uniformly among those that have another valid value in that block, and replaces the gene
with a different valid value drawn uniformly. The kinds are the paper's six (dense
operator, sparse operator, dense dim, sparse dim, connections, Project-Concat) plus FM where
the space searches it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import combinations
from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.space.search_space import SearchSpace

MUTATION_KINDS: tuple[str, ...] = (
    "dense_op", "sparse_op", "dense_dim", "sparse_dim", "connections", "project_concat", "fm",
)

# The Block fields each kind re-samples; "connections" changes one of its four per mutation.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "dense_op": ("dense_ops",),
    "sparse_op": ("sparse_ops",),
    "dense_dim": ("dense_dim",),
    "sparse_dim": ("sparse_dim",),
    "connections": ("dense_sources", "sparse_sources", "dense_left", "dense_right"),
    "project_concat": ("project_concat",),
    "fm": ("fm",),
}


def mutation_kinds(space: SearchSpace) -> tuple[str, ...]:
    """The kinds of mutation `space` offers (Project-Concat and FM only when searchable)."""
    return tuple(
        kind for kind in MUTATION_KINDS
        if not (kind == "project_concat" and not space.project_concat_searchable)
        and not (kind == "fm" and not space.fm_searchable)
    )


def mutate(architecture: Architecture, space: SearchSpace, rng: random.Random,
           num_mutations: int = 1, single_operator: bool = True) -> Architecture:
    """Apply `num_mutations` random mutations one after the other.

    Args:
        architecture: the parent; must validate against `space`.
        space: the search space the child stays in.
        rng: the random generator.
        num_mutations: how many mutations (each may undo an earlier one).
        single_operator: operator mutations draw one operator per branch (the single-op
            regime of search); otherwise a non-empty operator subset.
    """
    architecture.validate(space)
    for _ in range(num_mutations):
        kinds = {b: available_kinds(architecture, space, b, single_operator)
                 for b in range(1, space.num_blocks + 1)}
        blocks = [b for b, block_kinds in kinds.items() if block_kinds]
        if not blocks:
            raise NASRecError(f"space '{space.name}': no gene has a second value to mutate to")
        block = rng.choice(blocks)
        architecture = apply_mutation(architecture, space, rng, rng.choice(kinds[block]), block,
                                      single_operator)
    return architecture


def available_kinds(architecture: Architecture, space: SearchSpace, block: int,
                    single_operator: bool = True) -> tuple[str, ...]:
    """The kinds of mutation that have another valid value in block `block` (1-based)."""
    return tuple(kind for kind in mutation_kinds(space)
                 if _alternatives(architecture, space, block, kind, single_operator))


def apply_mutation(architecture: Architecture, space: SearchSpace, rng: random.Random, kind: str,
                   block: int, single_operator: bool = True) -> Architecture:
    """Re-sample the gene of kind `kind` in block `block` (1-based) to a different valid value."""
    if kind not in mutation_kinds(space):
        raise NASRecError(f"mutation kind {kind!r} is not one of {list(mutation_kinds(space))}")
    alternatives = _alternatives(architecture, space, block, kind, single_operator)
    if not alternatives:
        raise NASRecError(f"block {block}: mutation {kind!r}: no other valid value")
    field = rng.choice(sorted(alternatives))
    value = rng.choice(alternatives[field])
    blocks = list(architecture.blocks)
    blocks[block - 1] = replace(blocks[block - 1], **{field: value})
    return replace(architecture, blocks=tuple(blocks))


def _alternatives(architecture: Architecture, space: SearchSpace, block: int, kind: str,
                  single_operator: bool) -> dict[str, list[Any]]:
    """Per field of `kind`, the valid values of block `block` other than the current one."""
    current = architecture.block(block)
    result = {}
    for field in KIND_FIELDS[kind]:
        values = [v for v in _choices(space, block, field, single_operator)
                  if v != getattr(current, field)]
        if values:
            result[field] = values
    return result


def _choices(space: SearchSpace, block: int, field: str, single_operator: bool) -> list[Any]:
    if field in ("dense_ops", "sparse_ops"):
        ops = space.dense_ops if field == "dense_ops" else space.sparse_ops
        if single_operator:
            return [(op,) for op in ops]
        return [subset for k in range(1, len(ops) + 1) for subset in combinations(ops, k)]
    if field in ("dense_sources", "sparse_sources"):
        return [subset for k in range(1, space.connection_limit(block) + 1)
                for subset in combinations(range(block), k)]
    if field in ("dense_left", "dense_right"):
        return list(range(block))
    if field == "dense_dim":
        return list(space.dense_dims)
    if field == "sparse_dim":
        return list(space.sparse_dims)
    searchable = space.project_concat_searchable if field == "project_concat" else space.fm_searchable
    return [False, True] if searchable else [False]
