"""Local search: neighbours of the best so far, through the shared run loop (no torch)."""

from __future__ import annotations

import json

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.local_search import LocalSearch
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES

from search_helpers import TOY_SPACE, ToyObjective, gene_distance, toy_cost


def _search(path, records, **settings) -> LocalSearch:
    return SEARCH_STRATEGIES["local"].from_settings(
        TOY_SPACE, ToyObjective(), settings, seed=2, budget=30, cost=toy_cost, max_mflops=1.5,
        state_path=str(path), on_candidate=records.append)


def test_each_generation_scores_neighbours_of_the_best_so_far(tmp_path):
    search = _search(tmp_path / "state.json", [], children=5)
    search.run()
    assert search.evaluations == 30 and search.neighbours == 5
    assert [h["evaluations"] for h in search.history] == [5, 10, 15, 20, 25, 30]
    for record in search.history[1:]:
        parent = search.candidates[record["from"]]
        earlier = search.candidates[:record["evaluations"] - 5]
        assert parent.loss == min(c.loss for c in earlier)  # the best before the generation
        for child in search.candidates[record["evaluations"] - 5:record["evaluations"]]:
            assert 0 < gene_distance(child.architecture, parent.architecture, TOY_SPACE)
    assert all(toy_cost(c.architecture) <= 1.5 for c in search.candidates)
    assert search.best().loss < min(c.loss for c in search.candidates[:5])  # it climbed


def test_a_resumed_local_search_equals_an_uninterrupted_one(tmp_path):
    whole_records: list = []
    whole = _search(tmp_path / "whole.json", whole_records)
    whole.run()
    first_records: list = []
    _search(tmp_path / "split.json", first_records).run(stop_after=1)
    later_records: list = []
    resumed = _search(tmp_path / "split.json", later_records)
    assert resumed.resume()
    resumed.run()
    assert first_records + later_records == whole_records
    assert json.loads((tmp_path / "split.json").read_text())["candidates"] == \
        json.loads((tmp_path / "whole.json").read_text())["candidates"]


def test_local_search_needs_a_budget_and_neighbours():
    with pytest.raises(NASRecError, match="budget is required"):
        LocalSearch(TOY_SPACE, ToyObjective())
    with pytest.raises(NASRecError, match="'neighbours': 0"):
        LocalSearch(TOY_SPACE, ToyObjective(), neighbours=0, budget=3)
