"""Regularized evolution with adaptive mutation (paper §4; Real et al., 2019).

Generation 0 scores an initial population of random architectures. Each later generation
samples `sample_size` members of the population uniformly, takes the best as the parent,
and scores `num_children` children, each the parent after `num_mutations(generation)`
mutations (5, then one fewer every 20 generations, at least 1). The children join the
population and the oldest members leave it until it is back to `population_size`
(ageing, the "regularized" part).

A child that is already known (same `canonical()`) or over the FLOPs limit is redrawn from
the same parent; scoring stops at the evaluation budget. The state is saved after every
generation, and `run()` on a resumed search continues exactly where the saved one was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.base import (Candidate, CandidateCallback, Cost, ManyObjective,
                                         Objective, SearchBase)
from nasrec_torchrec.space.mutation import mutate
from nasrec_torchrec.space.sampling import sample_architecture
from nasrec_torchrec.space.search_space import SearchSpace


@dataclass(frozen=True)
class EvolutionConfig:
    """Settings of regularized evolution (defaults: the paper's).

    Args:
        population_size: members kept after each generation.
        initial_population: random architectures of generation 0 (None: `population_size`).
        sample_size: members sampled to pick a parent.
        num_children: children of the parent per generation.
        generations: generations after the initial population.
        initial_mutations: mutations per child in the first generation.
        mutation_decay_every: generations between decrements of the mutation count.
        min_mutations: the mutation count never goes below this.
    """

    population_size: int = 64
    initial_population: Optional[int] = None
    sample_size: int = 32
    num_children: int = 16
    generations: int = 100
    initial_mutations: int = 5
    mutation_decay_every: int = 20
    min_mutations: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "initial_population":
                continue
            minimum = 0 if f.name == "generations" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise NASRecError(f"evolution: field '{f.name}': {value!r} is not an integer "
                                  f">= {minimum}")

    @property
    def initial_size(self) -> int:
        """Architectures in generation 0."""
        return self.initial_population or self.population_size

    def num_mutations(self, generation: int) -> int:
        """Mutations per child in `generation` (1-based): 5 for 1..20, 4 for 21..40, ..."""
        decay = (max(generation, 1) - 1) // self.mutation_decay_every
        return max(self.min_mutations, self.initial_mutations - decay)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


# The paper's settings, and the official release's (128 initial, sample 64, 8 children,
# 240 generations).
PRESETS: dict[str, EvolutionConfig] = {
    "paper": EvolutionConfig(),
    "official": EvolutionConfig(population_size=128, sample_size=64, num_children=8,
                                generations=240),
}


def get_preset(name: str, **changes: Any) -> EvolutionConfig:
    """The preset `name` ("paper" or "official") with `changes` applied."""
    if name not in PRESETS:
        raise NASRecError(f"unknown evolution preset {name!r}; presets: {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


class RegularizedEvolution(SearchBase):
    """Regularized evolution on `Architecture` values with a pluggable objective.

    Args:
        space: the search space.
        objective: `objective(architecture) -> {"log_loss": ..., ...}` (lower is better).
        config: an `EvolutionConfig` (see `PRESETS`).
        Other keyword arguments: see `SearchBase` (seed, budget, cost, max_mflops,
        max_redraws, metric, state_path, on_candidate, score_many).

    Example::

        search = RegularizedEvolution(space, scorer.score, PRESETS["paper"], budget=500,
                                      state_path="out/search_state.json")
        search.resume()  # continue a saved search, if any
        best = search.run()
    """

    kind = "evolution"

    def __init__(self, space: SearchSpace, objective: Objective,
                 config: EvolutionConfig = PRESETS["paper"], *, seed: int = 0,
                 budget: Optional[int] = None, cost: Optional[Cost] = None,
                 max_mflops: Optional[float] = None, max_redraws: int = 100,
                 metric: str = "log_loss", state_path: Optional[str] = None,
                 on_candidate: Optional[CandidateCallback] = None,
                 score_many: Optional[ManyObjective] = None) -> None:
        super().__init__(space, objective, seed=seed, budget=budget, cost=cost,
                         max_mflops=max_mflops, max_redraws=max_redraws, metric=metric,
                         state_path=state_path, on_candidate=on_candidate,
                         score_many=score_many)
        self.config = config
        self.population: list[int] = []  # candidate indices, oldest first

    @classmethod
    def from_settings(cls, space: SearchSpace, objective: Objective,
                      settings: Mapping[str, Any], **common: Any) -> "RegularizedEvolution":
        """The `preset` with the `generations`, `population`, `sample_size` and `children`
        given (not None) applied; see `SearchBase.from_settings`."""
        config = get_preset(settings["preset"], generations=settings.get("generations"),
                            population_size=settings.get("population"),
                            sample_size=settings.get("sample_size"),
                            num_children=settings.get("children"))
        return cls(space, objective, config, **common)

    def planned_evaluations(self) -> Optional[int]:
        planned = self.config.initial_size + self.config.generations * self.config.num_children
        return min(planned, self.budget) if self.budget else planned

    def summary_settings(self) -> dict[str, Any]:
        return {"evolution": self.config.to_dict()}

    def settings(self) -> dict[str, Any]:
        config = self.config.to_dict()
        config.pop("generations")  # may be raised to continue a finished search
        return {**super().settings(), "evolution": config}

    def _extra_state(self) -> dict[str, Any]:
        return {"population": list(self.population), "config": self.config.to_dict()}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.population = [int(i) for i in state["population"]]

    @property
    def finished(self) -> bool:
        """All generations done, or the budget spent."""
        return self.generation >= self.config.generations or not self.budget_left()

    def step(self, generation: int) -> Optional[dict[str, Any]]:
        """Generation 0: the initial random population; later ones: a parent's children
        join the population and the oldest members leave it."""
        if generation == 0:
            self._initialize()
            return None
        parent = self.parent()
        mutations = self.config.num_mutations(generation)
        children = self.score_new(
            self.config.num_children,
            lambda: mutate(parent.architecture, self.space, self.rng, num_mutations=mutations),
            generation)
        self.population.extend(child.index for child in children)
        self._trim()
        return {"parent": parent.index, "mutations": mutations,
                "population_best_loss": min(self.candidates[i].loss for i in self.population)}

    def _initialize(self) -> None:
        initial = self.score_new(self.config.initial_size,
                                 lambda: sample_architecture(self.space, self.rng), 0)
        self.population.extend(candidate.index for candidate in initial)
        if not self.population:
            raise NASRecError("evolution: no initial architecture could be drawn (FLOPs limit "
                              "too tight, or a budget of 0)")
        self._trim()

    def _trim(self) -> None:
        excess = len(self.population) - self.config.population_size
        if excess > 0:
            del self.population[:excess]  # the oldest leave

    def parent(self) -> Candidate:
        """Sample `sample_size` members and return the best (ties: the first sampled)."""
        size = min(self.config.sample_size, len(self.population))
        sample = self.rng.sample(self.population, size)
        best = min(sample, key=lambda index: self.candidates[index].loss)
        return self.candidates[best]
