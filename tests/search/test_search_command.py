"""`nasrec search` end to end on a tiny supernet: files, resume, best architecture."""

from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")

from nasrec_torchrec.commands import search  # noqa: E402
from nasrec_torchrec.space import load_architecture  # noqa: E402
from nasrec_torchrec.errors import NASRecError  # noqa: E402
from nasrec_torchrec.space import Architecture, get_space  # noqa: E402

SMALL = ["--population", "4", "--sample-size", "2", "--children", "2",
         "--finetune-steps", "3", "--finetune-batch-size", "64", "--threads", "1",
         "--no-progress"]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    search.add_arguments(parser)
    return search.run(parser.parse_args(argv))


def test_search_command_writes_results_and_resumes(supernet_run, tmp_path):
    output = tmp_path / "search"
    base = ["--supernet", supernet_run, "--output", str(output), *SMALL]
    assert run([*base, "--generations", "1", "--max-mflops", "3.0"]) == 0
    lines = (output / "candidates.jsonl").read_text().splitlines()
    assert len(lines) == 6
    with pytest.raises(NASRecError, match="--resume"):
        run([*base, "--generations", "1", "--max-mflops", "3.0"])
    # a resume must score candidates as the search did (the generations may be raised)
    with pytest.raises(NASRecError, match=r"search_run.json: --resume with other settings than "
                       r"the search's: finetune_steps \(--finetune-steps\): 3 -> 4"):
        run([*base, "--generations", "2", "--max-mflops", "3.0", "--resume",
             "--finetune-steps", "4"])
    assert len((output / "candidates.jsonl").read_text().splitlines()) == 6
    assert run([*base, "--generations", "2", "--max-mflops", "3.0", "--resume"]) == 0
    records = [json.loads(line) for line in (output / "candidates.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in records] == [0] * 4 + [1] * 2 + [2] * 2
    assert [r["index"] for r in records] == list(range(8))
    space = get_space("nasrec-small")
    keys = {Architecture.from_dict(r["architecture"]).canonical() for r in records}
    assert len(keys) == 8
    for record in records:
        assert 0 < record["auc"] < 1 and record["rows"] == 600
        assert 0 < record["mflops"] <= 3.0 and record["params"] > 0
    summary = json.loads((output / "search.json").read_text())
    best = min(records, key=lambda r: r["log_loss"])
    assert summary["best"]["log_loss"] == best["log_loss"] and summary["evaluations"] == 8
    assert "multiply-add" in summary["flops_convention"]
    found = load_architecture(str(output / "best_architecture.json"))
    found.validate(space)
    assert found == Architecture.from_dict(best["architecture"])
    for plot in ("progress.png", "loss_cdf.png", "pareto.png"):
        assert (output / plot).stat().st_size > 1000


def test_random_search_needs_a_budget(supernet_run, tmp_path):
    with pytest.raises(NASRecError, match="--budget"):
        run(["--supernet", supernet_run, "--output", str(tmp_path), "--method", "random"])
