"""Path samplers: validity, statistics, warm-up schedule, determinism and resume."""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import combinations
from math import comb

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import (
    SPACES,
    STRATEGIES,
    PathSampler,
    WarmupSchedule,
    get_space,
    sample_architecture,
    sample_full,
    sample_probes,
    sample_single_op_any_conn,
    sample_sources,
)
from nasrec_torchrec.space.sampling import sample_binomial_sources


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_sampled_architecture_validates(space_name, strategy):
    space, rng = SPACES[space_name], random.Random(11)
    for _ in range(200):
        STRATEGIES[strategy](space, rng).validate(space)


@pytest.mark.parametrize("strategy", ["single_op_any_conn", "single_op_single_conn", "single_op_binomial_conn"])
def test_single_op_draws_one_dense_and_one_sparse_op_per_block(strategy):
    space, rng = get_space("nasrec-full"), random.Random(0)
    seen_dense, seen_sparse = Counter(), Counter()
    for _ in range(300):
        for block in STRATEGIES[strategy](space, rng).blocks:
            assert len(block.dense_ops) == 1 and len(block.sparse_ops) == 1
            seen_dense[block.dense_ops[0]] += 1
            seen_sparse[block.sparse_ops[0]] += 1
    assert set(seen_dense) == set(space.dense_ops) and set(seen_sparse) == set(space.sparse_ops)


def test_single_conn_draws_exactly_one_source_of_each_kind():
    space, rng = get_space("official-full"), random.Random(0)
    firsts = Counter()
    for _ in range(300):
        architecture = STRATEGIES["single_op_single_conn"](space, rng)
        for block in architecture.blocks:
            assert len(block.dense_sources) == 1 and len(block.sparse_sources) == 1
        firsts[architecture.block(4).dense_sources[0]] += 1
    assert set(firsts) == {0, 1, 2, 3}


def test_any_op_draws_every_non_empty_op_subset():
    space, rng = get_space("nasrec-full"), random.Random(0)
    subsets = Counter(STRATEGIES["any_op_any_conn"](space, rng).block(2).dense_ops for _ in range(1500))
    assert len(subsets) == 15 and all(ops for ops in subsets)
    assert max(subsets.values()) < 2 * min(subsets.values())


@pytest.mark.parametrize("number", [2, 3])
def test_any_conn_draws_every_subset_uniformly(number):
    space, rng = get_space("nasrec-small"), random.Random(5)
    draws = 3500
    counts = Counter(sample_sources(space, number, rng) for _ in range(draws))
    sampled = {STRATEGIES["single_op_any_conn"](space, rng).block(number).sparse_sources
               for _ in range(200)}
    expected = [subset for k in range(1, number + 1) for subset in combinations(range(number), k)]
    assert sorted(counts) == sorted(expected) == sorted(sampled)
    for subset in expected:  # 2^b − 1 subsets, each with probability 1 / (2^b − 1)
        assert abs(counts[subset] / draws - 1 / len(expected)) < 0.03


def test_any_conn_with_a_limit_weights_sizes_by_subset_counts():
    space, rng = get_space("official-small"), random.Random(1)
    draws = 4000
    sizes = Counter(len(sample_sources(space, 6, rng)) for _ in range(draws))
    total = sum(comb(6, k) for k in range(1, 5))  # 6 + 15 + 20 + 15 = 56
    assert set(sizes) == {1, 2, 3, 4}
    for k in range(1, 5):
        assert abs(sizes[k] / draws - comb(6, k) / total) < 0.03


@pytest.mark.parametrize("number, expected", [
    (1, {1: 1.0}), (2, {1: 0.5, 2: 0.5}), (7, {1: 1 / 8, 2: 3 / 8, 3: 3 / 8, 4: 1 / 8}),
])
def test_binomial_conn_follows_the_official_rule(number, expected):
    space, rng = get_space("official-full"), random.Random(2)
    draws = 4000
    sizes = Counter(len(sample_binomial_sources(space, number, rng)) for _ in range(draws))
    assert set(sizes) == set(expected)
    for size, probability in expected.items():
        assert abs(sizes[size] / draws - probability) < 0.03


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_full_path_uses_everything_at_maximum(space_name):
    space = SPACES[space_name]
    architecture = sample_full(space, random.Random(0))
    architecture.validate(space)
    for number, block in enumerate(architecture.blocks, start=1):
        assert block.dense_ops == space.dense_ops and block.sparse_ops == space.sparse_ops
        assert block.dense_dim == max(space.dense_dims) and block.sparse_dim == max(space.sparse_dims)
        assert block.project_concat == space.project_concat_searchable and block.fm == space.fm_searchable
        assert len(block.dense_sources) == len(block.sparse_sources) == space.connection_limit(number)


def test_draws_dims_and_flags_uniformly():
    space, rng = get_space("official-small"), random.Random(4)
    blocks = [b for _ in range(500) for b in STRATEGIES["single_op_any_conn"](space, rng).blocks]
    dims = Counter(b.dense_dim for b in blocks)
    assert set(dims) == set(space.dense_dims)
    assert max(dims.values()) < 1.3 * min(dims.values())
    for flag in ("project_concat", "fm"):
        assert abs(sum(getattr(b, flag) for b in blocks) / len(blocks) - 0.5) < 0.03
    lefts = Counter(b.dense_left for b in blocks[6::7])  # block 7: sources 0..6
    assert set(lefts) == set(range(7))


def test_warmup_probability_follows_the_schedule_exactly():
    schedule = WarmupSchedule(total_steps=100)
    assert [schedule.full_path_probability(s) for s in (0, 5, 10, 20, 24, 25, 26, 99)] == [
        1.0, 0.8, 0.6, 0.19999999999999996, 0.040000000000000036, 0.0, 0.0, 0.0]
    half = WarmupSchedule(total_steps=10, fraction=0.5)
    assert half.full_path_probability(1) == pytest.approx(0.8)
    assert half.full_path_probability(5) == 0.0
    assert WarmupSchedule(total_steps=10, fraction=0.0).full_path_probability(0) == 0.0


def test_warmup_rejects_bad_settings():
    with pytest.raises(NASRecError, match="field 'fraction'"):
        WarmupSchedule(total_steps=10, fraction=1.5)
    with pytest.raises(NASRecError, match="field 'total_steps'"):
        WarmupSchedule(total_steps=-1)


@pytest.mark.parametrize("step, probability", [(0, 1.0), (100, 0.6), (200, 0.2), (250, 0.0)])
def test_warmup_draws_the_full_path_with_the_scheduled_probability(step, probability):
    space = get_space("nasrec-full")
    sampler = PathSampler(space, seed=step, warmup=WarmupSchedule(total_steps=1000))
    draws = 1500
    # Single-op paths have one dense op; only the full path has all four.
    full = sum(len(sampler.next_path(step).block(1).dense_ops) == 4 for _ in range(draws))
    assert abs(full / draws - probability) < 0.04


def test_same_seed_gives_the_same_paths_and_other_seeds_differ():
    space, warmup = get_space("official-full"), WarmupSchedule(total_steps=40)
    one, two = PathSampler(space, seed=3, warmup=warmup), PathSampler(space, seed=3, warmup=warmup)
    paths = [one.next_path(s) for s in range(40)]
    assert paths == [two.next_path(s) for s in range(40)]
    other = PathSampler(space, seed=4, warmup=warmup)
    assert paths != [other.next_path(s) for s in range(40)]


def test_state_dict_resume_continues_the_same_sequence():
    space, warmup = get_space("nasrec-full"), WarmupSchedule(total_steps=60)
    uninterrupted = PathSampler(space, "any_op_any_conn", seed=9, warmup=warmup)
    expected = [uninterrupted.next_path(s) for s in range(60)]
    first = PathSampler(space, "any_op_any_conn", seed=9, warmup=warmup)
    got = [first.next_path(s) for s in range(25)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed = PathSampler(space, "any_op_any_conn", seed=12345, warmup=warmup)
    resumed.load_state_dict(state)
    got += [resumed.next_path(s) for s in range(25, 60)]
    assert got == expected


def test_state_dict_of_another_strategy_is_refused():
    space = get_space("nasrec-small")
    state = PathSampler(space, "full").state_dict()
    with pytest.raises(NASRecError, match="field 'strategy'"):
        PathSampler(space).load_state_dict(state)


def test_sample_architecture_is_single_op_any_conn():
    space = get_space("official-full")
    assert sample_architecture(space, random.Random(8)) == sample_single_op_any_conn(space, random.Random(8))


def test_probes_are_distinct_seeded_search_draws_and_leave_other_generators_alone():
    space = get_space("nasrec-small")
    random.seed(3)
    before = random.getstate()
    probes = sample_probes(space, 6, seed=0)
    assert random.getstate() == before  # the global generator was not drawn from
    assert len({probe.canonical() for probe in probes}) == 6
    for probe in probes:
        probe.validate(space)
    rng = random.Random("probes:0")
    assert probes[0] == sample_architecture(space, rng)  # the search's own sampler
    assert sample_probes(space, 3, seed=0) == probes[:3]  # a prefix for any count
    assert sample_probes(space, 6, seed=1) != probes
    assert sample_probes(space, 0, seed=0) == []


def test_probes_repeat_when_the_space_has_fewer_architectures():
    tiny = get_space("nasrec-small").to_dict()
    tiny.update(num_blocks=1, dense_ops=["fc"], sparse_ops=["embed_fc"], dense_dims=[16],
                sparse_dims=[16], project_concat_searchable=False, fm_searchable=False)
    from nasrec_torchrec.space import SearchSpace

    space = SearchSpace.from_dict(tiny)
    probes = sample_probes(space, 3, seed=0, max_redraws=5)
    assert len(probes) == 3 and len({p.canonical() for p in probes}) < 3


def test_unknown_strategy_is_refused():
    with pytest.raises(NASRecError, match="field 'strategy': 'single_path' is not one of"):
        PathSampler(get_space("nasrec-small"), "single_path")


def test_plus_presets_draw_fm_cross_and_flat_fc_like_every_operator():
    space = get_space("nasrec-small-plus")
    rng = random.Random(0)
    drawn = Counter(op for _ in range(200) for block in sample_architecture(space, rng).blocks
                    for op in block.dense_ops)
    assert set(drawn) == {"fc", "dot_product", "fm", "cross", "flat_fc"}
    assert all(200 < count < 360 for count in drawn.values())  # 1400 draws, 280 expected
