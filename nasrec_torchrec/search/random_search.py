"""Random search: distinct random architectures (single-operator any-connection) up to a
budget, in generations of `batch_size` (for progress, state saves and plots comparable to
evolution's). Same cache, FLOPs limit and resumable state as regularized evolution.
"""

from __future__ import annotations

from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.base import (CandidateCallback, Cost, ManyObjective, Objective,
                                         SearchBase)
from nasrec_torchrec.space.sampling import sample_architecture
from nasrec_torchrec.space.search_space import SearchSpace


class RandomSearch(SearchBase):
    """Score `budget` distinct random architectures.

    Args:
        space: the search space.
        objective: `objective(architecture) -> {"log_loss": ..., ...}`.
        budget: distinct candidates to score (required).
        batch_size: candidates per generation (state saved after each).
        Other keyword arguments: see `SearchBase`.

    Example::

        search = RandomSearch(space, scorer.score, budget=500, seed=0)
        best = search.run()
    """

    kind = "random"
    needs_budget = True

    def __init__(self, space: SearchSpace, objective: Objective, *, budget: int,
                 batch_size: int = 16, seed: int = 0, cost: Optional[Cost] = None,
                 max_mflops: Optional[float] = None, max_redraws: int = 100,
                 metric: str = "log_loss", state_path: Optional[str] = None,
                 on_candidate: Optional[CandidateCallback] = None,
                 score_many: Optional[ManyObjective] = None) -> None:
        if budget is None:
            raise NASRecError("random search: a budget is required")
        if batch_size < 1:
            raise NASRecError(f"random search: field 'batch_size': {batch_size} must be >= 1")
        super().__init__(space, objective, seed=seed, budget=budget, cost=cost,
                         max_mflops=max_mflops, max_redraws=max_redraws, metric=metric,
                         state_path=state_path, on_candidate=on_candidate,
                         score_many=score_many)
        self.batch_size = batch_size
        self.exhausted = False

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "batch_size": self.batch_size}

    @property
    def finished(self) -> bool:
        """The budget is spent (or no new architecture could be drawn)."""
        return not self.budget_left() or self.exhausted

    def step(self, generation: int) -> Optional[dict[str, Any]]:
        """One generation of `batch_size` new random candidates."""
        drawn = self.score_new(self.batch_size, lambda: sample_architecture(self.space, self.rng),
                               generation)
        self.exhausted = not drawn
        return None
