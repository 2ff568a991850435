"""Regularized evolution and random search on a toy objective (no torch)."""

from __future__ import annotations

import json

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.evolution import PRESETS, EvolutionConfig, RegularizedEvolution, get_preset
from nasrec_torchrec.search.random_search import RandomSearch
from nasrec_torchrec.space import SearchSpace

from search_helpers import TINY_SPACE, TOY_SPACE, ToyObjective, toy_cost

SMALL = EvolutionConfig(population_size=16, sample_size=8, num_children=8, generations=150,
                        initial_mutations=3, mutation_decay_every=20)


def test_evolution_finds_the_hidden_optimum_within_its_budget():
    objective = ToyObjective()
    search = RegularizedEvolution(TOY_SPACE, objective, SMALL, seed=0, budget=1000)
    best = search.run()
    assert best.loss == 0.0
    assert best.architecture.canonical() == objective.target.canonical()
    assert search.evaluations == 1000 and len(objective.calls) == 1000
    # random search with the same budget does not get there
    random_best = RandomSearch(TOY_SPACE, ToyObjective(), budget=1000, seed=0).run()
    assert random_best.loss > 5


def test_no_architecture_is_scored_twice():
    space = SearchSpace.from_dict(TINY_SPACE)  # small: duplicates are frequent
    objective = ToyObjective(space)
    config = EvolutionConfig(population_size=8, sample_size=4, num_children=8, generations=30)
    search = RegularizedEvolution(space, objective, config, seed=1, budget=120)
    search.run()
    assert search.duplicates > 0
    assert set(objective.calls.values()) == {1}
    keys = [c.architecture.canonical() for c in search.candidates]
    assert len(keys) == len(set(keys)) == search.evaluations <= 120
    assert all(c.architecture.validate(space) is None for c in search.candidates)


def test_population_is_aged_and_parent_is_the_best_of_its_sample():
    config = EvolutionConfig(population_size=10, sample_size=4, num_children=5, generations=4)
    search = RegularizedEvolution(TOY_SPACE, ToyObjective(), config, seed=2)
    search.run(stop_after=0)
    assert len(search.population) == 10 and search.generation == 0
    first = list(search.population)
    search.advance()
    assert search.population[:5] == first[5:]  # the five oldest left
    assert [search.candidates[i].generation for i in search.population[5:]] == [1] * 5
    state = search.rng.getstate()
    parent = search.parent()
    search.rng.setstate(state)
    sample = search.rng.sample(search.population, 4)
    assert parent.loss == min(search.candidates[i].loss for i in sample)


def test_mutation_count_decays_every_twenty_generations():
    config = PRESETS["paper"]
    counts = [config.num_mutations(g) for g in range(1, 121)]
    assert counts[:20] == [5] * 20 and counts[20:40] == [4] * 20
    assert counts[80:100] == [1] * 20 and counts[100:] == [1] * 20
    assert (config.population_size, config.sample_size, config.num_children,
            config.generations) == (64, 32, 16, 100)
    official = get_preset("official")
    assert (official.initial_size, official.sample_size, official.num_children,
            official.generations) == (128, 64, 8, 240)
    assert get_preset("paper", generations=3).generations == 3
    with pytest.raises(NASRecError, match="preset"):
        get_preset("nope")
    with pytest.raises(NASRecError, match="sample_size"):
        EvolutionConfig(sample_size=0)


def _records(search_kind, tmp_path, name, stop_after=None, resume=False):
    records = []
    config = EvolutionConfig(population_size=6, sample_size=3, num_children=4, generations=3)
    kwargs = dict(seed=5, cost=toy_cost, max_mflops=1.2, state_path=str(tmp_path / name),
                  on_candidate=records.append)
    if search_kind == "evolution":
        search = RegularizedEvolution(TOY_SPACE, ToyObjective(), config, **kwargs)
    else:
        search = RandomSearch(TOY_SPACE, ToyObjective(), budget=20, batch_size=4, **kwargs)
    if resume:
        assert search.resume()
    search.run(stop_after=stop_after)
    return search, records


@pytest.mark.parametrize("kind", ["evolution", "random"])
def test_resumed_search_equals_the_uninterrupted_one(tmp_path, kind):
    whole, whole_records = _records(kind, tmp_path, "whole.json")
    _, first_records = _records(kind, tmp_path, "split.json", stop_after=1)
    resumed, later_records = _records(kind, tmp_path, "split.json", resume=True)
    assert whole.generation == resumed.generation == (3 if kind == "evolution" else 4)
    assert first_records + later_records == whole_records
    saved_whole = json.loads((tmp_path / "whole.json").read_text())
    saved_split = json.loads((tmp_path / "split.json").read_text())
    assert saved_whole == saved_split


def test_resume_refuses_other_settings(tmp_path):
    _records("evolution", tmp_path, "state.json", stop_after=0)
    other = RegularizedEvolution(TOY_SPACE, ToyObjective(), PRESETS["paper"], seed=5,
                                 cost=toy_cost, max_mflops=1.2,
                                 state_path=str(tmp_path / "state.json"))
    with pytest.raises(NASRecError, match="settings.evolution"):
        other.resume()


def test_flops_limit_rejects_before_scoring():
    objective = ToyObjective()
    search = RegularizedEvolution(TOY_SPACE, objective, SMALL, seed=3, budget=60,
                                  cost=toy_cost, max_mflops=0.6)
    search.run()
    assert search.rejected > 0
    assert all(toy_cost(c.architecture) <= 0.6 for c in search.candidates)
    assert all(c.result["mflops"] == toy_cost(c.architecture) for c in search.candidates)
    assert all(toy_cost(a) <= 0.6 for a in objective.calls)
    with pytest.raises(NASRecError, match="cost"):
        RegularizedEvolution(TOY_SPACE, objective, SMALL, max_mflops=1.0)


def test_random_search_respects_the_budget_and_never_repeats():
    objective = ToyObjective()
    search = RandomSearch(TOY_SPACE, objective, budget=37, batch_size=8, seed=0)
    search.run()
    assert search.evaluations == 37 and search.generation == 4
    assert set(objective.calls.values()) == {1}
    assert [h["evaluations"] for h in search.history] == [8, 16, 24, 32, 37]
