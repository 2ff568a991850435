"""The paper's and the official release's presets draw exactly what they drew before FM and
Cross joined the operator table: an operator added to the table changes no preset's results
(every strategy's samples, the supernet's training paths, mutations in both regimes)."""

from __future__ import annotations

import hashlib
import random

import pytest

from nasrec_torchrec.space import (STRATEGIES, PathSampler, WarmupSchedule, get_space, mutate,
                                   sample_architecture)

# sha256 of the draws below, computed on the code before FM and Cross were added.
PINNED = {
    "nasrec-small": "65e5a33196022fc88cf4700156330634490c2901e2885939d86792a1095694fa",
    "nasrec-full": "2f7875cf269f2555f024047adf7c43a1267eb17aaaa54bf3d9028e54ac4d5cc0",
    "official-small": "2082634a8a695d90ff7d7a80b0ce61e4a92b5232588446ed916c1d92d27d3a3e",
    "official-full": "2a06292adaf90507654ef0017ea0ba02a6e4003f21db32d1d8c7849539b24f0c",
}


def draws_digest(space_name: str) -> str:
    """sha256 over the JSON of sampled, warm-up-path and mutated architectures (seeds 0-2)."""
    space = get_space(space_name)
    digest = hashlib.sha256()
    for seed in range(3):
        rng = random.Random(seed)
        for strategy in sorted(STRATEGIES):
            for _ in range(5):
                digest.update(STRATEGIES[strategy](space, rng).to_json().encode())
        sampler = PathSampler(space, seed=seed, warmup=WarmupSchedule(20))
        for step in range(20):
            digest.update(sampler.next_path(step).to_json().encode())
        parent = sample_architecture(space, rng)
        for trial in range(20):
            parent = mutate(parent, space, rng, num_mutations=1 + trial % 2,
                            single_operator=trial % 3 != 0)
            digest.update(parent.to_json().encode())
    return digest.hexdigest()


@pytest.mark.parametrize("space_name", sorted(PINNED))
def test_preset_draws_are_unchanged(space_name):
    assert draws_digest(space_name) == PINNED[space_name]
