"""What every search strategy shares: the run loop, scored candidates, the duplicate cache,
the evaluation budget, the FLOPs constraint, and a JSON state saved after every generation.

A strategy subclasses `SearchBase` and implements `step(generation)` (score one generation
of candidates: an initial population, a parent's children, a batch of random draws) and, if
it stops on its own, `finished`; `run()` loops over generations, records each one (history,
state file, progress bar) and stops at the budget. The strategies by name are in
`search/strategies.py`.

Plain Python (no torch): the objective is any callable `objective(architecture) -> dict`
holding the metric to minimise (`"log_loss"` by default), so a strategy runs on a toy
objective in tests as it runs on `SubnetScorer.score` in a search.

Duplicates are never scored twice: the cache is keyed by `Architecture.canonical()`, so two
architectures that compute the same function count as one. Every random choice comes from one
`random.Random` whose state is saved with the candidates, so a search resumed from its state
file continues exactly as the uninterrupted one would.

A generation's new candidates are all drawn before any is scored (the draws never depend on a
score of the same generation), so `score_many`, when given, scores them together: a
multi-rank search spreads them over the ranks (`search/run.py`). The candidates are recorded
in the order drawn whichever way they are scored.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping, Optional

from nasrec_torchrec.artifacts import read_json, write_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.space.search_space import SearchSpace

logger = logging.getLogger(__name__)

STATE_FORMAT = "nasrec_torchrec.search_state/1"

Objective = Callable[[Architecture], Mapping[str, Any]]
ManyObjective = Callable[[list[Architecture]], list[Mapping[str, Any]]]
Cost = Callable[[Architecture], float]
CandidateCallback = Callable[[dict[str, Any]], None]


@dataclass
class Candidate:
    """One scored architecture.

    Args:
        index: order of scoring (0-based; the budget counts these).
        generation: the generation that produced it (0 = the initial population).
        architecture: the genotype as drawn (valid in the space).
        loss: the metric minimised (NaN and missing values count as +inf).
        result: everything the objective returned, plus "mflops" when a cost is given.
    """

    index: int
    generation: int
    architecture: Architecture
    loss: float
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the line of `candidates.jsonl`)."""
        return {"index": self.index, "generation": self.generation, "loss": self.loss,
                **self.result, "architecture": self.architecture.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Candidate":
        """Inverse of `to_dict`."""
        result = {k: v for k, v in data.items()
                  if k not in ("index", "generation", "loss", "architecture")}
        return cls(index=int(data["index"]), generation=int(data["generation"]),
                   architecture=Architecture.from_dict(data["architecture"]),
                   loss=float(data["loss"]), result=result)


def _as_loss(value: Any) -> float:
    try:
        loss = float(value)
    except (TypeError, ValueError):
        return math.inf
    return math.inf if math.isnan(loss) else loss


class SearchBase:
    """Candidates, cache, budget, constraint and state of a search.

    Args:
        space: the search space.
        objective: `objective(architecture) -> {metric: value, ...}`.
        seed: seeds the one generator of every random choice.
        budget: at most this many distinct candidates scored (None: no limit).
        cost: `cost(architecture) -> MFLOPs`, evaluated before scoring (needed by `max_mflops`).
        max_mflops: candidates costing more are rejected before scoring and redrawn.
        max_redraws: draws tried for one new candidate (duplicates and rejected ones) before
            giving up on it.
        metric: the key of the objective's result that is minimised.
        state_path: JSON file written after every generation (None: not saved).
        on_candidate: called with each new candidate's record right after it is scored.
        score_many: `score_many(architectures) -> [result, ...]` (in their order), scoring a
            generation's new candidates together (None: `objective` one by one).

    Class attributes: `kind` (the strategy's name, as registered and saved in the state) and
    `needs_budget` (whether it only stops at the budget).
    """

    kind = "base"
    needs_budget = False

    def __init__(self, space: SearchSpace, objective: Objective, *, seed: int = 0,
                 budget: Optional[int] = None, cost: Optional[Cost] = None,
                 max_mflops: Optional[float] = None, max_redraws: int = 100,
                 metric: str = "log_loss", state_path: Optional[str] = None,
                 on_candidate: Optional[CandidateCallback] = None,
                 score_many: Optional[ManyObjective] = None) -> None:
        if max_mflops is not None and cost is None:
            raise NASRecError("search: max_mflops needs a cost function")
        if budget is not None and budget < 1:
            raise NASRecError(f"search: field 'budget': {budget} must be at least 1")
        if max_redraws < 1:
            raise NASRecError(f"search: field 'max_redraws': {max_redraws} must be at least 1")
        self.space = space
        self.objective = objective
        self.seed = seed
        self.budget = budget
        self.cost = cost
        self.max_mflops = max_mflops
        self.max_redraws = max_redraws
        self.metric = metric
        self.state_path = state_path
        self.on_candidate = on_candidate
        self.score_many = score_many
        self.rng = random.Random(seed)
        self.candidates: list[Candidate] = []
        self.cache: dict[Architecture, int] = {}  # canonical architecture -> candidate index
        self.generation: int = -1  # the last completed generation
        self.history: list[dict[str, Any]] = []
        self.rejected: int = 0  # draws over the FLOPs limit
        self.duplicates: int = 0  # draws already scored
        self.gave_up: int = 0  # new candidates not found within max_redraws
        self._progress: Any = None  # the tqdm bar of a `run(progress=True)`

    @classmethod
    def from_settings(cls, space: SearchSpace, objective: Objective,
                      settings: Mapping[str, Any], **common: Any) -> "SearchBase":
        """The strategy configured from the search stage's settings (the fields of
        `SearchRun` by name); `common`: the keyword arguments of `SearchBase`."""
        return cls(space, objective, **common)

    def planned_evaluations(self) -> Optional[int]:
        """Candidates the search scores if nothing stops it early (a progress bar's total)."""
        return self.budget

    def summary_settings(self) -> dict[str, Any]:
        """The strategy's own settings for the search summary, under their key."""
        return {}

    # --- the run loop -------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the search is over (the base: when the budget is spent)."""
        return not self.budget_left()

    def step(self, generation: int) -> Optional[dict[str, Any]]:
        """Score the candidates of `generation` (0 = the first); extra history fields."""
        raise NotImplementedError(f"{type(self).__name__}.step")

    def advance(self) -> None:
        """One generation: `step`, then its history entry and the state file."""
        generation = self.generation + 1
        extra = self.step(generation)
        self._end_generation(generation, extra)

    def run(self, stop_after: Optional[int] = None, progress: bool = False
            ) -> Optional[Candidate]:
        """Run (or continue, after `resume`) until `finished`; the best candidate.

        Args:
            stop_after: stop once this generation is complete (to interrupt on purpose).
            progress: show a progress bar of the candidates scored (tqdm, on stderr).
        """
        if progress:
            from tqdm import tqdm

            self._progress = tqdm(total=self.planned_evaluations(), initial=self.evaluations,
                                  unit="candidate", desc=f"search ({self.kind})",
                                  dynamic_ncols=True)
        try:
            while not self.finished and (stop_after is None or self.generation < stop_after):
                self.advance()
        finally:
            if self._progress is not None:
                self._progress.close()
                self._progress = None
        return self.best()

    # --- budget, drawing, scoring -----------------------------------------------------------

    @property
    def evaluations(self) -> int:
        """Distinct candidates scored so far."""
        return len(self.candidates)

    def budget_left(self, pending: int = 0) -> bool:
        """Whether another candidate may be scored (besides `pending` drawn, not scored yet)."""
        return self.budget is None or self.evaluations + pending < self.budget

    def draw(self, make: Callable[[], Architecture],
             pending: Collection[Architecture] = ()) -> Optional[Architecture]:
        """A new architecture from `make()`: not scored before nor among the canonical forms
        `pending`, within the FLOPs limit; redrawn up to `max_redraws` times, else None."""
        for _ in range(self.max_redraws):
            architecture = make()
            key = architecture.canonical()
            if key in self.cache or key in pending:
                self.duplicates += 1
                continue
            if self.max_mflops is not None and self.cost(architecture) > self.max_mflops:
                self.rejected += 1
                continue
            return architecture
        self.gave_up += 1
        return None

    def score_new(self, count: int, make: Callable[[], Architecture], generation: int
                  ) -> list[Candidate]:
        """Up to `count` new candidates drawn from `make()` (see `draw`) while the budget
        lasts, then scored (with `score_many` when given) and recorded in the order drawn."""
        drawn: list[Architecture] = []
        pending: set[Architecture] = set()
        for _ in range(count):
            if not self.budget_left(len(drawn)):
                break
            architecture = self.draw(make, pending)
            if architecture is not None:
                drawn.append(architecture)
                pending.add(architecture.canonical())
        if self.score_many is None or not drawn:
            return [self.evaluate(architecture, generation) for architecture in drawn]
        results = self.score_many(drawn)
        if len(results) != len(drawn):
            raise NASRecError(f"search: {len(drawn)} candidates were scored as {len(results)}")
        return [self.record(architecture, result, generation)
                for architecture, result in zip(drawn, results)]

    def evaluate(self, architecture: Architecture, generation: int) -> Candidate:
        """Score `architecture` (it must be new) and record it."""
        if architecture.canonical() in self.cache:
            raise NASRecError("search: an architecture was about to be scored twice")
        return self.record(architecture, self.objective(architecture), generation)

    def record(self, architecture: Architecture, result: Mapping[str, Any], generation: int
               ) -> Candidate:
        """Record the new `architecture` scored as `result` (the objective's dict)."""
        key = architecture.canonical()
        if key in self.cache:
            raise NASRecError("search: an architecture was about to be scored twice")
        result = dict(result)
        if self.cost is not None and "mflops" not in result:
            result["mflops"] = float(self.cost(architecture))
        candidate = Candidate(index=len(self.candidates), generation=generation,
                              architecture=architecture, loss=_as_loss(result.get(self.metric)),
                              result=result)
        self.candidates.append(candidate)
        self.cache[key] = candidate.index
        if self.on_candidate is not None:
            self.on_candidate(candidate.to_dict())
        if self._progress is not None:
            self._progress.update(1)
            self._progress.set_postfix(best=f"{self.best().loss:.5f}", gen=generation)
        return candidate

    def best(self) -> Optional[Candidate]:
        """The candidate with the lowest loss (the earliest among equals)."""
        if not self.candidates:
            return None
        return min(self.candidates, key=lambda c: (c.loss, c.index))

    def _end_generation(self, generation: int, extra: Optional[dict[str, Any]] = None) -> None:
        best = self.best()
        self.generation = generation
        self.history.append({
            "generation": generation, "evaluations": self.evaluations,
            "best_loss": best.loss if best else None,
            "generation_best_loss": min((c.loss for c in self.candidates
                                         if c.generation == generation), default=None),
            **(extra or {}),
        })
        self.save_state()

    # --- state --------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The settings that must match for a resume (subclasses add theirs)."""
        return {"kind": self.kind, "seed": self.seed, "max_mflops": self.max_mflops,
                "max_redraws": self.max_redraws, "metric": self.metric,
                "space": self.space.to_dict()}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: settings, candidates, generation, RNG state, history."""
        version, internal, gauss_next = self.rng.getstate()
        return {
            "format": STATE_FORMAT, "settings": self.settings(), "budget": self.budget,
            "generation": self.generation,
            "candidates": [c.to_dict() for c in self.candidates],
            "rng_state": [version, list(internal), gauss_next],
            "history": self.history,
            "counters": {"rejected": self.rejected, "duplicates": self.duplicates,
                         "gave_up": self.gave_up},
            **self._extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any], source: str = "search state") -> None:
        """Continue from `state_dict()` output; the settings must be the same."""
        if state.get("format") != STATE_FORMAT:
            raise NASRecError(f"{source}: field 'format': {state.get('format')!r} is not "
                              f"{STATE_FORMAT!r}")
        saved, mine = state["settings"], json.loads(json.dumps(self.settings()))
        for key in sorted(set(saved) | set(mine)):
            if saved.get(key) != mine.get(key):
                raise NASRecError(f"{source}: field 'settings.{key}': the saved search has "
                                  f"{saved.get(key)!r}, this one {mine.get(key)!r}")
        self.candidates = [Candidate.from_dict(record) for record in state["candidates"]]
        self.cache = {c.architecture.canonical(): c.index for c in self.candidates}
        self.generation = int(state["generation"])
        version, internal, gauss_next = state["rng_state"]
        self.rng.setstate((version, tuple(internal), gauss_next))
        self.history = list(state["history"])
        counters = state.get("counters", {})
        self.rejected = int(counters.get("rejected", 0))
        self.duplicates = int(counters.get("duplicates", 0))
        self.gave_up = int(counters.get("gave_up", 0))
        self._load_extra_state(state)

    def save_state(self) -> None:
        """Write the state file atomically (when a path is set)."""
        if self.state_path:
            write_json(self.state_path, self.state_dict(), indent=None)

    def resume(self, path: Optional[str] = None) -> bool:
        """Load the state file if it exists; True when a saved search was loaded."""
        path = path or self.state_path
        if not path or not os.path.exists(path):
            return False
        self.load_state_dict(read_json(path), source=path)
        logger.info("resumed %s search from %s: generation %d, %d candidates", self.kind, path,
                    self.generation, self.evaluations)
        return True

    def summary(self) -> dict[str, Any]:
        """Counts and the best candidate, JSON-ready."""
        best = self.best()
        return {"kind": self.kind, "generations": self.generation, "evaluations":
                self.evaluations, "rejected_over_flops": self.rejected,
                "duplicates_redrawn": self.duplicates, "gave_up": self.gave_up,
                "best": best.to_dict() if best else None}
