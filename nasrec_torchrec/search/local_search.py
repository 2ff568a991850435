"""Local search: start from random architectures, then score one-mutation neighbours of the
best candidate so far, a generation at a time (White et al., "Local search is state of the
art for NAS benchmarks", 2020). Same cache, FLOPs limit and resumable state as the others;
`nasrec search --method local --budget N [--children NEIGHBOURS]`.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.base import Objective, SearchBase
from nasrec_torchrec.space.mutation import mutate
from nasrec_torchrec.space.sampling import sample_architecture
from nasrec_torchrec.space.search_space import SearchSpace

DEFAULT_NEIGHBOURS = 16


class LocalSearch(SearchBase):
    """Hill climbing over one-mutation neighbours, up to a budget.

    Args:
        space, objective: see `SearchBase`.
        neighbours: candidates per generation: random ones in generation 0, then mutations
            of the best so far.
        Other keyword arguments (budget required): see `SearchBase`.

    Example::

        search = LocalSearch(space, scorer.score, budget=200, neighbours=8, seed=0)
        best = search.run()
    """

    kind = "local"
    needs_budget = True

    def __init__(self, space: SearchSpace, objective: Objective, *,
                 neighbours: int = DEFAULT_NEIGHBOURS, **common: Any) -> None:
        if neighbours < 1:
            raise NASRecError(f"local search: field 'neighbours': {neighbours} must be >= 1")
        if common.get("budget") is None:
            raise NASRecError("local search: a budget is required")
        super().__init__(space, objective, **common)
        self.neighbours = neighbours
        self.exhausted = False

    @classmethod
    def from_settings(cls, space: SearchSpace, objective: Objective,
                      settings: Mapping[str, Any], **common: Any) -> "LocalSearch":
        """`children` (if set) is the number of neighbours per generation."""
        return cls(space, objective, neighbours=settings.get("children") or DEFAULT_NEIGHBOURS,
                   **common)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "neighbours": self.neighbours}

    @property
    def finished(self) -> bool:
        """The budget is spent, or no new architecture could be drawn."""
        return not self.budget_left() or self.exhausted

    def step(self, generation: int) -> Optional[dict[str, Any]]:
        """Random starts in generation 0, then neighbours of the best so far (random restarts
        once every neighbour drawn was scored before or over the FLOPs limit)."""
        best = self.best()
        if generation > 0 and best is not None:
            if self.score_new(self.neighbours, lambda: mutate(
                    best.architecture, self.space, self.rng, num_mutations=1), generation):
                return {"from": best.index}
        drawn = self.score_new(self.neighbours,
                               lambda: sample_architecture(self.space, self.rng), generation)
        self.exhausted = not drawn
        return None
