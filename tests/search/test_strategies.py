"""The strategy registry and the run loop every strategy shares (no torch)."""

from __future__ import annotations

import json

import pytest

from nasrec_torchrec.search.base import SearchBase
from nasrec_torchrec.search.evolution import RegularizedEvolution, get_preset
from nasrec_torchrec.search.random_search import RandomSearch
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES

from search_helpers import TOY_SPACE, HillClimbing, ToyObjective, toy_cost

SETTINGS = {"preset": "official", "generations": 3, "population": 6, "sample_size": None,
            "children": 4, "budget": None}


def test_registry_names_each_strategy_by_its_kind():
    assert list(SEARCH_STRATEGIES)[:2] == ["evolution", "random"]  # later ones may follow
    assert SEARCH_STRATEGIES["evolution"] is RegularizedEvolution
    assert SEARCH_STRATEGIES["random"] is RandomSearch
    assert (RegularizedEvolution.needs_budget, RandomSearch.needs_budget) == (False, True)
    assert all(name == strategy.kind for name, strategy in SEARCH_STRATEGIES.items())


def test_strategies_are_built_from_the_stage_settings():
    objective = ToyObjective()
    evolution = SEARCH_STRATEGIES["evolution"].from_settings(TOY_SPACE, objective, SETTINGS,
                                                              seed=3, budget=10)
    assert evolution.config == get_preset("official", generations=3, population_size=6,
                                          num_children=4)
    assert evolution.planned_evaluations() == 10  # the budget; 6 + 3 * 4 = 18 without it
    evolution.budget = None
    assert evolution.planned_evaluations() == 18
    assert evolution.summary_settings() == {"evolution": evolution.config.to_dict()}
    random_search = SEARCH_STRATEGIES["random"].from_settings(TOY_SPACE, objective, SETTINGS,
                                                              seed=3, budget=9)
    assert (random_search.budget, random_search.batch_size) == (9, 16)
    assert random_search.planned_evaluations() == 9 and random_search.summary_settings() == {}


def test_a_strategy_with_only_a_step_gets_budget_history_state_and_resume(tmp_path):
    def search(name: str, records: list) -> HillClimbing:
        return HillClimbing(TOY_SPACE, ToyObjective(), seed=4, budget=9, cost=toy_cost,
                            max_mflops=1.2, state_path=str(tmp_path / name),
                            on_candidate=records.append)

    whole_records: list = []
    whole = search("whole.json", whole_records)
    best = whole.run()
    assert whole.evaluations == 9 and whole.finished
    assert [h["evaluations"] for h in whole.history] == [1, 3, 5, 7, 9]
    assert best.loss == min(c.loss for c in whole.candidates)
    assert whole.history[2]["from"] == min(whole.candidates[:3], key=lambda c: c.loss).index
    first_records: list = []
    search("split.json", first_records).run(stop_after=1)
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["generation"] == 1 and len(saved["candidates"]) == 3
    later_records: list = []
    resumed = search("split.json", later_records)
    assert resumed.resume()
    resumed.run()
    assert first_records + later_records == whole_records
    assert (tmp_path / "split.json").read_text() == (tmp_path / "whole.json").read_text()


def test_progress_bar_changes_nothing_but_the_terminal(tmp_path, capsys):
    plain, shown = [], []
    RandomSearch(TOY_SPACE, ToyObjective(), budget=12, batch_size=5, seed=1,
                 on_candidate=plain.append).run()
    search = RandomSearch(TOY_SPACE, ToyObjective(), budget=12, batch_size=5, seed=1,
                          on_candidate=shown.append)
    search.run(progress=True)
    assert shown == plain
    assert "search (random)" in capsys.readouterr().err and search._progress is None


def test_the_base_has_no_step():
    with pytest.raises(NotImplementedError, match="SearchBase.step"):
        SearchBase(TOY_SPACE, ToyObjective(), budget=3).run()


@pytest.mark.parametrize("method", ["evolution", "random", "local"])
def test_scoring_a_generation_together_finds_the_same_candidates(method):
    """`score_many` gets each generation's new candidates at once (as the ranks of a
    multi-rank search share them) and the search is the one-by-one search, record for record,
    even when it scores them in another order."""
    settings = {**SETTINGS, "generations": 4, "population": 5, "children": 3}
    common = dict(seed=2, budget=17, cost=toy_cost, max_mflops=1.5)

    def search(records: list, score_many=None) -> SearchBase:
        return SEARCH_STRATEGIES[method].from_settings(
            TOY_SPACE, ToyObjective(), settings, on_candidate=records.append,
            score_many=score_many, **common)

    one_by_one: list = []
    alone = search(one_by_one)
    alone.run()
    batches: list[int] = []

    def backwards(architectures):
        batches.append(len(architectures))
        objective = ToyObjective()
        return [objective(a) for a in architectures[::-1]][::-1]

    together: list = []
    shared = search(together, backwards)
    shared.run()
    assert together == one_by_one and len(together) == 17
    assert sum(batches) == 17 and max(batches) > 1
    assert shared.state_dict() == alone.state_dict()
