"""Path samplers for supernet training and random search, and the full-path warm-up rule.

Every sampler takes an explicit `random.Random`: seeded identically on every rank, it draws
the same path everywhere (DESIGN.md invariant 2). Dims are drawn uniformly, Project-Concat
and FM are on with probability 1/2 when the space searches them, and `dense_left` /
`dense_right` are uniform over the sources 0..b-1 of block b.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from math import comb
from typing import Any, Callable

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture, Block
from nasrec_torchrec.space.search_space import SearchSpace

Sampler = Callable[[SearchSpace, random.Random], Architecture]


def sample_sources(space: SearchSpace, block: int, rng: random.Random) -> tuple[int, ...]:
    """A source subset of block `block`, uniform over the non-empty subsets of 0..block-1
    with at most `space.max_connections` members."""
    sizes = range(1, space.connection_limit(block) + 1)
    size = rng.choices(sizes, weights=[comb(block, k) for k in sizes])[0]
    return tuple(sorted(rng.sample(range(block), size)))


def sample_binomial_sources(space: SearchSpace, block: int, rng: random.Random) -> tuple[int, ...]:
    """The official release's rule (`anypath_choice binomial-0.5`): 1 + Binomial(L - 1, 1/2)
    distinct sources chosen uniformly, L = `space.connection_limit(block)`."""
    size = 1 + sum(rng.random() < 0.5 for _ in range(space.connection_limit(block) - 1))
    return tuple(sorted(rng.sample(range(block), size)))


def sample_single_source(space: SearchSpace, block: int, rng: random.Random) -> tuple[int, ...]:
    """Exactly one source, uniform over 0..block-1."""
    return (rng.randrange(block),)


def _single_op(ops: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    return (rng.choice(ops),)


def _any_ops(ops: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    """Uniform over the non-empty subsets of `ops` (rejection of the empty set)."""
    while True:
        chosen = tuple(op for op in ops if rng.random() < 0.5)
        if chosen:
            return chosen


def _random_architecture(
    space: SearchSpace,
    rng: random.Random,
    pick_ops: Callable[[tuple[str, ...], random.Random], tuple[str, ...]],
    pick_sources: Callable[[SearchSpace, int, random.Random], tuple[int, ...]],
) -> Architecture:
    blocks = []
    for b in range(1, space.num_blocks + 1):
        blocks.append(Block(
            dense_sources=pick_sources(space, b, rng),
            sparse_sources=pick_sources(space, b, rng),
            dense_left=rng.randrange(b),
            dense_right=rng.randrange(b),
            dense_ops=pick_ops(space.dense_ops, rng),
            sparse_ops=pick_ops(space.sparse_ops, rng),
            dense_dim=rng.choice(space.dense_dims),
            sparse_dim=rng.choice(space.sparse_dims),
            project_concat=space.project_concat_searchable and rng.random() < 0.5,
            fm=space.fm_searchable and rng.random() < 0.5,
        ))
    return Architecture(blocks=tuple(blocks), project_concat_rows=space.project_concat_rows)


def sample_single_op_any_conn(space: SearchSpace, rng: random.Random) -> Architecture:
    """One dense and one sparse operator per block; any non-empty source subsets (the
    paper's default strategy)."""
    return _random_architecture(space, rng, _single_op, sample_sources)


def sample_single_op_binomial_conn(space: SearchSpace, rng: random.Random) -> Architecture:
    """One dense and one sparse operator per block; 1 + Binomial(L - 1, 1/2) sources per
    input kind (L = min(block, max_connections)), as the official release samples them."""
    return _random_architecture(space, rng, _single_op, sample_binomial_sources)


def sample_single_op_single_conn(space: SearchSpace, rng: random.Random) -> Architecture:
    """One dense and one sparse operator per block; exactly one dense and one sparse source."""
    return _random_architecture(space, rng, _single_op, sample_single_source)


def sample_any_op_any_conn(space: SearchSpace, rng: random.Random) -> Architecture:
    """Non-empty random operator subsets per branch; any non-empty source subsets."""
    return _random_architecture(space, rng, _any_ops, sample_sources)


def sample_full(space: SearchSpace, rng: random.Random) -> Architecture:
    """The whole supernet: all operators, largest dims, Project-Concat and FM on when
    searchable, all sources (a random `max_connections` of them when the space limits them);
    left / right random."""
    blocks = []
    for b in range(1, space.num_blocks + 1):
        limit = space.connection_limit(b)
        blocks.append(Block(
            dense_sources=tuple(sorted(rng.sample(range(b), limit))),
            sparse_sources=tuple(sorted(rng.sample(range(b), limit))),
            dense_left=rng.randrange(b),
            dense_right=rng.randrange(b),
            dense_ops=space.dense_ops,
            sparse_ops=space.sparse_ops,
            dense_dim=space.dense_dims[-1],
            sparse_dim=space.sparse_dims[-1],
            project_concat=space.project_concat_searchable,
            fm=space.fm_searchable,
        ))
    return Architecture(blocks=tuple(blocks), project_concat_rows=space.project_concat_rows)


def sample_architecture(space: SearchSpace, rng: random.Random) -> Architecture:
    """A random architecture for search (single-operator any-connection)."""
    return sample_single_op_any_conn(space, rng)


def sample_probes(space: SearchSpace, count: int, seed: int,
                  max_redraws: int = 100) -> list[Architecture]:
    """`count` search architectures (`sample_architecture`) from a generator of their own,
    seeded by `seed` (a run's seed; no other generator is consumed): distinct by canonical
    form while `max_redraws` draws in a row find a new one. The first k of them are the same
    for any `count` >= k."""
    rng = random.Random(f"probes:{seed}")
    probes: list[Architecture] = []
    seen: set[Architecture] = set()
    redraws = 0
    while len(probes) < count:
        architecture = sample_architecture(space, rng)
        key = architecture.canonical()
        if key in seen and redraws < max_redraws:
            redraws += 1
            continue
        probes.append(architecture)
        seen.add(key)
        redraws = 0
    return probes


STRATEGIES: dict[str, Sampler] = {
    "single_op_any_conn": sample_single_op_any_conn,
    "single_op_binomial_conn": sample_single_op_binomial_conn,
    "single_op_single_conn": sample_single_op_single_conn,
    "any_op_any_conn": sample_any_op_any_conn,
    "full": sample_full,
}


@dataclass(frozen=True)
class WarmupSchedule:
    """Probability of training the full path: 1 − step / (fraction · total_steps) during the
    first `fraction` of the steps, then 0 (paper §4: linear decay over the first quarter).

    Args:
        total_steps: the number of training steps.
        fraction: the share of the steps the warm-up lasts.
    """

    total_steps: int
    fraction: float = 0.25

    def __post_init__(self) -> None:
        if isinstance(self.total_steps, bool) or not isinstance(self.total_steps, int) or self.total_steps < 0:
            raise NASRecError(f"warm-up: field 'total_steps': {self.total_steps!r} is not an integer >= 0")
        if not 0.0 <= self.fraction <= 1.0:
            raise NASRecError(f"warm-up: field 'fraction': {self.fraction!r} is not in [0, 1]")

    def full_path_probability(self, step: int) -> float:
        """The probability that step `step` (0-based) trains the full path."""
        warmup_steps = self.fraction * self.total_steps
        if step >= warmup_steps:
            return 0.0
        return 1.0 - step / warmup_steps


class PathSampler:
    """Draws the path of every supernet training step, reproducibly and resumably.

    Args:
        space: the search space.
        strategy: a key of `STRATEGIES`.
        seed: the generator's seed; the same on every rank.
        warmup: when given, step `s` trains the full path with probability
            `warmup.full_path_probability(s)`.

    Example::

        sampler = PathSampler(get_space("nasrec-full"), seed=0, warmup=WarmupSchedule(1000))
        path = sampler.next_path(step=0)  # the full path: p = 1 at step 0
    """

    def __init__(self, space: SearchSpace, strategy: str = "single_op_any_conn", seed: int = 0,
                 warmup: WarmupSchedule | None = None) -> None:
        if strategy not in STRATEGIES:
            raise NASRecError(f"field 'strategy': {strategy!r} is not one of {list(STRATEGIES)}")
        self.space: SearchSpace = space
        self.strategy: str = strategy
        self.warmup: WarmupSchedule | None = warmup
        self._sample: Sampler = STRATEGIES[strategy]
        self._rng: random.Random = random.Random(seed)

    def next_path(self, step: int) -> Architecture:
        """The path of training step `step`; consumes the generator."""
        if self.warmup is not None and self._rng.random() < self.warmup.full_path_probability(step):
            return sample_full(self.space, self._rng)
        return self._sample(self.space, self._rng)

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serializable snapshot of the generator (with the space and strategy)."""
        version, internal, gauss_next = self._rng.getstate()
        return {"space": self.space.name, "strategy": self.strategy,
                "rng_state": [version, list(internal), gauss_next]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` so the following paths continue the saved sequence."""
        for key, mine in (("space", self.space.name), ("strategy", self.strategy)):
            if state.get(key) != mine:
                raise NASRecError(f"path sampler state: field '{key}': {state.get(key)!r} != {mine!r}")
        version, internal, gauss_next = state["rng_state"]
        self._rng.setstate((version, tuple(internal), gauss_next))
