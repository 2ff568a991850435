"""Mutations: validity, which gene changes, single-op preservation, and no-op rate."""

from __future__ import annotations

import random
from dataclasses import fields, replace

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import (
    MUTATION_KINDS,
    SPACES,
    Architecture,
    Block,
    SearchSpace,
    apply_mutation,
    get_space,
    mutate,
    mutation_kinds,
    sample_architecture,
)
from nasrec_torchrec.space.mutation import KIND_FIELDS


def changed_genes(parent: Architecture, child: Architecture) -> list[tuple[int, str]]:
    return [(number, f.name)
            for number, (a, b) in enumerate(zip(parent.blocks, child.blocks), start=1)
            for f in fields(Block) if getattr(a, f.name) != getattr(b, f.name)]


def test_kinds_follow_the_space():
    assert mutation_kinds(get_space("nasrec-small")) == MUTATION_KINDS[:-1]
    assert mutation_kinds(get_space("official-full")) == MUTATION_KINDS
    no_pc = replace(get_space("nasrec-full"), name="no-pc", project_concat_searchable=False)
    assert "project_concat" not in mutation_kinds(no_pc)


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_a_single_mutation_changes_exactly_one_gene_and_validates(space_name):
    space, rng = SPACES[space_name], random.Random(0)
    for _ in range(300):
        parent = sample_architecture(space, rng)
        child = mutate(parent, space, rng)
        child.validate(space)
        assert len(changed_genes(parent, child)) == 1
        assert all(len(b.dense_ops) == 1 and len(b.sparse_ops) == 1 for b in child.blocks)


@pytest.mark.parametrize("space_name", ["nasrec-full", "official-full"])
def test_apply_mutation_changes_only_the_intended_kind(space_name):
    space, rng = SPACES[space_name], random.Random(1)
    for kind in mutation_kinds(space):
        for number in range(2, space.num_blocks + 1):
            parent = sample_architecture(space, rng)
            child = apply_mutation(parent, space, rng, kind, number)
            child.validate(space)
            [(block, field)] = changed_genes(parent, child)
            assert block == number and field in KIND_FIELDS[kind]


def test_connection_mutation_reaches_all_four_connection_genes():
    space, rng = get_space("nasrec-full"), random.Random(2)
    seen = set()
    for _ in range(200):
        parent = sample_architecture(space, rng)
        [(_, field)] = changed_genes(parent, apply_mutation(parent, space, rng, "connections", 4))
        seen.add(field)
    assert seen == set(KIND_FIELDS["connections"])


def test_block_one_has_no_other_connections():
    space = get_space("nasrec-small")
    parent = sample_architecture(space, random.Random(0))
    with pytest.raises(NASRecError, match="block 1: mutation 'connections': no other valid value"):
        apply_mutation(parent, space, random.Random(0), "connections", 1)
    with pytest.raises(NASRecError, match="mutation kind 'fm' is not one of"):
        apply_mutation(parent, space, random.Random(0), "fm", 2)


def test_single_op_regime_keeps_one_operator_and_any_op_regime_draws_subsets():
    space, rng = get_space("nasrec-full"), random.Random(3)
    parent = sample_architecture(space, rng)
    singles = {apply_mutation(parent, space, rng, "dense_op", 3).block(3).dense_ops for _ in range(100)}
    assert singles == {(op,) for op in space.dense_ops} - {parent.block(3).dense_ops}
    subsets = {apply_mutation(parent, space, rng, "dense_op", 3, single_operator=False).block(3).dense_ops
               for _ in range(400)}
    assert len(subsets) == 14 and parent.block(3).dense_ops not in subsets


def test_mutated_connections_respect_the_connection_limit():
    space, rng = get_space("official-full"), random.Random(4)
    for _ in range(300):
        child = apply_mutation(sample_architecture(space, rng), space, rng, "connections", 7)
        assert len(child.block(7).dense_sources) <= 4 and len(child.block(7).sparse_sources) <= 4


def test_many_mutations_change_at_most_that_many_genes():
    space, rng = get_space("official-full"), random.Random(5)
    counts = set()
    for _ in range(200):
        parent = sample_architecture(space, rng)
        child = mutate(parent, space, rng, num_mutations=5)
        child.validate(space)
        counts.add(len(changed_genes(parent, child)))
    assert max(counts) == 5 and counts <= set(range(6))


def test_mutate_refuses_an_invalid_parent():
    space = get_space("nasrec-small")
    parent = sample_architecture(get_space("nasrec-full"), random.Random(0))
    parent = replace(parent, blocks=tuple(replace(b, dense_ops=("gating",)) for b in parent.blocks))
    with pytest.raises(NASRecError, match="block 1: field 'dense_ops'"):
        mutate(parent, space, random.Random(0))


def test_a_space_with_nothing_to_mutate_is_refused():
    space = SearchSpace(name="fixed", num_blocks=1, dense_ops=("fc",), sparse_ops=("embed_fc",),
                        dense_dims=(8,), sparse_dims=(4,), project_concat_searchable=False)
    parent = sample_architecture(space, random.Random(0))
    with pytest.raises(NASRecError, match="space 'fixed': no gene has a second value"):
        mutate(parent, space, random.Random(0))


def no_op_fraction(space_name: str, trials: int, seed: int = 0) -> float:
    """The share of single mutations whose child computes the same function as its parent."""
    space, rng = get_space(space_name), random.Random(seed)
    same = 0
    for _ in range(trials):
        parent = sample_architecture(space, rng)
        same += parent.canonical() == mutate(parent, space, rng).canonical()
    return same / trials


@pytest.mark.parametrize("space_name, low, high", [
    ("nasrec-small", 0.16, 0.26),  # measured 0.210 over 4000 trials
    ("official-small", 0.18, 0.28),  # measured 0.227; the official search re-scores such twins
])
def test_share_of_single_mutations_that_change_nothing(space_name, low, high):
    assert low < no_op_fraction(space_name, trials=1000) < high


def test_dense_op_mutations_reach_fm_and_cross_in_a_plus_preset():
    space, rng = get_space("nasrec-full-plus"), random.Random(0)
    parent = sample_architecture(space, rng)
    reached = {apply_mutation(parent, space, rng, "dense_op", 2).block(2).dense_ops
               for _ in range(100)}
    assert {("fm",), ("cross",)} <= reached
    assert parent.block(2).dense_ops not in reached
