"""`SearchRun` is what `nasrec search` takes; its choices are the registries (no torch)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields

import pytest

from nasrec_torchrec.commands import search as search_command
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.config import ExperimentConfig, SearchStageConfig
from nasrec_torchrec.search.evolution import PRESETS
from nasrec_torchrec.search.settings import FINETUNE_MODES, ScoringRun, SearchRun
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES

from search_helpers import HillClimbing


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    search_command.add_arguments(parser)
    return parser


def test_every_flag_is_a_field_in_order_with_its_default_help_and_choices():
    actions = [a for a in parser()._actions if a.dest != "help"]
    assert [a.dest for a in actions] == [f.name for f in fields(SearchRun)]
    for action, spec in zip(actions, fields(SearchRun)):
        assert action.help == spec.metadata["help"]
        assert action.default == (None if spec.metadata.get("required") else spec.default)
        assert action.required == bool(spec.metadata.get("required"))
    choices = {a.dest: a.choices for a in actions if a.choices}
    assert choices == {"method": ("evolution", "random"), "preset": ("paper", "official"),
                       "finetune": ("head", "none", "full")}
    assert fields(SearchRun)[:len(fields(ScoringRun))] == fields(ScoringRun)


def test_parsed_flags_give_the_run_and_its_summary_config():
    args = parser().parse_args(["--supernet", "s", "--output", "o", "--method", "random",
                                "--budget", "7", "--max-mflops", "2.5", "--no-progress"])
    run = SearchRun.from_values({**vars(args), "verbose": True, "_module": None})
    assert run == SearchRun(supernet="s", output="o", method="random", budget=7,
                            max_mflops=2.5, no_progress=True)
    assert asdict(run) == vars(args)  # search.json's "config", keys in the flags' order
    assert list(asdict(run)) == list(vars(args))
    assert ScoringRun.from_values(vars(args)) == ScoringRun(supernet="s", output="o",
                                                            no_progress=True)


def test_validate_names_the_field():
    SearchRun(supernet="s", output="o").validate()
    with pytest.raises(NASRecError, match="--method random needs --budget N"):
        SearchRun(supernet="s", output="o", method="random").validate()
    with pytest.raises(NASRecError, match="field 'method': 'local' is not one of"):
        SearchRun(supernet="s", output="o", method="local").validate()
    with pytest.raises(NASRecError, match="field 'finetune'"):
        SearchRun(supernet="s", output="o", finetune="last").validate()
    with pytest.raises(NASRecError, match="field 'output' is required"):
        SearchRun(supernet="s").validate()


def test_a_registered_strategy_is_a_choice_of_the_command_and_the_config(monkeypatch):
    with pytest.raises(NASRecError, match="search.method"):
        ExperimentConfig(search=SearchStageConfig(method="hill_climbing")).validate()
    monkeypatch.setitem(SEARCH_STRATEGIES, "hill_climbing", HillClimbing)
    args = parser().parse_args(["--supernet", "s", "--output", "o", "--method",
                                "hill_climbing"])
    SearchRun.from_values(vars(args)).validate()
    ExperimentConfig(search=SearchStageConfig(method="hill_climbing")).validate()
    with pytest.raises(NASRecError, match="search.budget"):
        ExperimentConfig(search=SearchStageConfig(method="random")).validate()
    assert SearchRun.__dataclass_fields__["preset"].metadata["choices"] is PRESETS
    assert SearchRun.__dataclass_fields__["finetune"].metadata["choices"] is FINETUNE_MODES
