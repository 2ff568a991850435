"""`nasrec search` on 2 gloo ranks (forked as torchrun sets them up): each rank scores its
share of a generation from its own copy of the supernet, and the search is the one-rank
search, candidate for candidate, winner included; it resumes on another number of ranks."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")

SMALL = ["--population", "4", "--sample-size", "2", "--children", "3", "--finetune-steps",
         "3", "--finetune-batch-size", "64", "--eval-rows", "300", "--threads", "1",
         "--no-progress"]
TIMING = ("seconds",)


def _search(nasrec, supernet: str, output: str, generations: int, ranks: int,
            *flags: str) -> None:
    nasrec(["search", "--supernet", supernet, "--output", output, "--generations",
            str(generations), *SMALL, *flags], ranks=ranks)


def _candidates(output: str) -> list[dict]:
    with open(os.path.join(output, "candidates.jsonl")) as handle:
        return [{key: value for key, value in json.loads(line).items() if key not in TIMING}
                for line in handle]


def _read(output: str, name: str) -> str:
    with open(os.path.join(output, name)) as handle:
        return handle.read()


@pytest.fixture(scope="module")
def one_rank(nasrec, supernet_run, tmp_path_factory) -> str:
    """A 3-generation search on one rank (13 candidates)."""
    output = str(tmp_path_factory.mktemp("one_rank") / "search")
    _search(nasrec, supernet_run, output, 3, 1)
    return output


def test_two_ranks_find_the_candidates_and_winner_of_one(nasrec, supernet_run, one_rank,
                                                        tmp_path):
    two = str(tmp_path / "two")
    _search(nasrec, supernet_run, two, 3, 2)
    expected = _candidates(one_rank)
    assert len(expected) == 4 + 3 * 3
    assert _candidates(two) == expected
    assert _read(two, "best_architecture.json") == _read(one_rank, "best_architecture.json")
    summaries = [json.loads(_read(output, "search.json")) for output in (one_rank, two)]
    assert [s["timing"]["ranks"] for s in summaries] == [1, 2]
    for key in ("history", "pareto_front", "evaluations", "duplicates_redrawn"):
        assert summaries[1][key] == summaries[0][key], key
    states = [json.loads(_read(output, "search_state.json")) for output in (one_rank, two)]
    assert states[1]["rng_state"] == states[0]["rng_state"]
    assert states[1]["population"] == states[0]["population"]


def test_a_search_resumes_on_another_number_of_ranks(nasrec, supernet_run, one_rank,
                                                     tmp_path):
    output = str(tmp_path / "resumed")
    _search(nasrec, supernet_run, output, 1, 2)  # generations 0-1 on 2 ranks
    assert len(_candidates(output)) == 4 + 3
    _search(nasrec, supernet_run, output, 2, 1, "--resume")  # generation 2 on 1 rank
    _search(nasrec, supernet_run, output, 3, 2, "--resume")  # generation 3 on 2 ranks
    assert _candidates(output) == _candidates(one_rank)
    assert _read(output, "best_architecture.json") == _read(one_rank, "best_architecture.json")
