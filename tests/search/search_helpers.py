"""Helpers of the search tests: a tiny space, a toy objective with a known optimum, and a
strategy written against `SearchBase` alone."""

from __future__ import annotations

import random
from typing import Any, Optional

from nasrec_torchrec.search.base import SearchBase
from nasrec_torchrec.space import Architecture, SearchSpace, mutate, sample_architecture

TINY_SPACE = dict(name="tiny", num_blocks=2, dense_ops=["fc", "dot_product"],
                  sparse_ops=["embed_fc"], dense_dims=[8, 16], sparse_dims=[4, 8],
                  project_concat_searchable=True, project_concat_rows=1)

TOY_SPACE = SearchSpace(name="toy", num_blocks=4, dense_ops=("fc", "dot_product"),
                        sparse_ops=("embed_fc",), dense_dims=(8, 16, 32, 64),
                        sparse_dims=(2, 4, 8), project_concat_searchable=True)


def gene_distance(a: Architecture, b: Architecture, space: SearchSpace) -> float:
    """Differences between the canonical forms of `a` and `b`, gene by gene."""
    a, b = a.canonical(), b.canonical()
    distance = 0.0
    for x, y in zip(a.blocks, b.blocks):
        distance += len(set(x.dense_sources) ^ set(y.dense_sources))
        distance += len(set(x.sparse_sources) ^ set(y.sparse_sources))
        distance += (x.dense_ops != y.dense_ops) + (x.sparse_ops != y.sparse_ops)
        distance += (x.project_concat != y.project_concat)
        distance += (x.dense_left != y.dense_left) + (x.dense_right != y.dense_right)
        dims = (0,) + space.dense_dims
        distance += abs(dims.index(x.dense_dim) - dims.index(y.dense_dim))
        rows = (0,) + space.sparse_dims
        distance += abs(rows.index(x.sparse_dim) - rows.index(y.sparse_dim))
    return distance


class ToyObjective:
    """`{"log_loss": distance to a hidden target}`; counts its calls per canonical form."""

    def __init__(self, space: SearchSpace = TOY_SPACE, seed: int = 123) -> None:
        self.space = space
        self.target = sample_architecture(space, random.Random(seed))
        self.calls: dict[Architecture, int] = {}

    def __call__(self, architecture: Architecture) -> dict:
        key = architecture.canonical()
        self.calls[key] = self.calls.get(key, 0) + 1
        return {"log_loss": gene_distance(architecture, self.target, self.space), "auc": 0.5}


def toy_cost(architecture: Architecture) -> float:
    """A made-up MFLOPs figure: the sum of the live dense dims / 100."""
    return sum(block.dense_dim for block in architecture.canonical().blocks) / 100


class HillClimbing(SearchBase):
    """A strategy written against `SearchBase` alone: one random start, then each generation
    scores two one-mutation neighbours of the best so far."""

    kind = "hill_climbing"

    def step(self, generation: int) -> Optional[dict[str, Any]]:
        if generation == 0:
            self.score_new(1, lambda: sample_architecture(self.space, self.rng), 0)
            return None
        best = self.best()
        self.score_new(2, lambda: mutate(best.architecture, self.space, self.rng,
                                         num_mutations=1), generation)
        return {"from": best.index}
