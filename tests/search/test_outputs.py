"""The files of a search: the folder's guard, candidates.jsonl on resume, the summary (no
torch; the strategies run on a toy objective)."""

from __future__ import annotations

import json
import math

import pytest

from nasrec_torchrec.artifacts import read_jsonl
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.evolution import EvolutionConfig, RegularizedEvolution
from nasrec_torchrec.search.outputs import SearchOutputs
from nasrec_torchrec.search.random_search import RandomSearch
from nasrec_torchrec.space import Architecture

from search_helpers import TOY_SPACE, ToyObjective, toy_cost

CONFIG = EvolutionConfig(population_size=6, sample_size=3, num_children=4, generations=3)


def evolution(outputs: SearchOutputs) -> RegularizedEvolution:
    return RegularizedEvolution(TOY_SPACE, ToyObjective(), CONFIG, seed=5, cost=toy_cost,
                                state_path=outputs.state_path,
                                on_candidate=outputs.append_candidate)


def test_an_earlier_search_is_refused_replaced_or_continued(tmp_path):
    outputs = SearchOutputs(str(tmp_path / "search"))
    outputs.prepare(resume=False, overwrite=False)
    evolution(outputs).run(stop_after=0)
    with pytest.raises(NASRecError, match="--resume"):
        outputs.prepare(resume=False, overwrite=False)
    outputs.prepare(resume=True, overwrite=False)
    assert len(read_jsonl(outputs.candidates_path)) == 6
    outputs.prepare(resume=False, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "search").iterdir()) == []


def test_resume_drops_the_lines_of_a_partial_generation(tmp_path):
    whole = SearchOutputs(str(tmp_path / "whole"))
    evolution(whole).run()
    split = SearchOutputs(str(tmp_path / "split"))
    evolution(split).run(stop_after=1)
    with open(split.candidates_path) as handle:
        scored_before_a_crash = handle.readline()
    with open(split.candidates_path, "a") as handle:
        handle.write(scored_before_a_crash)  # scored, but its generation was never saved
    resumed = evolution(split)
    assert split.resume(resumed) and len(read_jsonl(split.candidates_path)) == 10
    resumed.run()
    with open(whole.candidates_path) as a, open(split.candidates_path) as b:
        assert a.read() == b.read()
    fresh = SearchOutputs(str(tmp_path / "fresh"))
    fresh.prepare(resume=True, overwrite=False)
    assert not fresh.resume(evolution(fresh))


@pytest.mark.parametrize("kind", ["evolution", "random"])
def test_results_hold_the_best_the_front_and_the_strategy_settings(tmp_path, kind):
    outputs = SearchOutputs(str(tmp_path))
    if kind == "evolution":
        search = evolution(outputs)
    else:
        search = RandomSearch(TOY_SPACE, ToyObjective(), budget=9, batch_size=4, seed=5,
                              cost=toy_cost, on_candidate=outputs.append_candidate)
    best = search.run()
    settings = {"method": kind, "max_mflops": 1.5}
    summary = outputs.write_results(search, settings, {"finetune": "head"}, {"step": 4},
                                    {"load_seconds": 1.0, "search_seconds_this_run": 2.0})
    assert list(summary) == ["config", "scoring", "evolution", "supernet", "kind", "generations",
                             "evaluations", "rejected_over_flops", "duplicates_redrawn",
                             "gave_up", "best", "best_architecture_file", "pareto_front",
                             "history", "flops_convention", "timing", "plots"]
    assert summary["evolution"] == (CONFIG.to_dict() if kind == "evolution" else None)
    assert summary["config"] == settings and summary["best"] == best.to_dict()
    assert summary["timing"] == {"load_seconds": 1.0, "search_seconds_this_run": 2.0,
                                 "candidate_seconds_total": 0.0, "candidate_seconds_mean": 0.0}
    assert json.loads((tmp_path / "search.json").read_text()) == json.loads(json.dumps(summary))
    architecture = Architecture.from_json((tmp_path / "best_architecture.json").read_text())
    assert architecture == best.architecture
    front = [search.candidates[i] for i in summary["pareto_front"]]
    assert all(not (c.loss < f.loss and c.result["mflops"] <= f.result["mflops"])
               for f in front for c in search.candidates if not math.isnan(c.loss))
    for name in ("progress.png", "loss_cdf.png", "pareto.png"):
        assert summary["plots"][name.split(".")[0]] == name
        assert (tmp_path / name).stat().st_size > 1000
