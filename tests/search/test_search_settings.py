"""`SearchRun` is what `nasrec search` takes; its choices are the registries (no torch)."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from nasrec_torchrec.commands import search as search_command
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.config import ExperimentConfig, SearchStageConfig
from nasrec_torchrec.search.settings import FINETUNE_MODES, ScoringRun, SearchRun
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES
from nasrec_torchrec.settings import from_args, option_of

from search_helpers import HillClimbing


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    search_command.add_arguments(parser)
    return parser


def test_every_flag_is_a_field_in_order_with_its_help_and_choices():
    actions = [a for a in parser()._actions if a.dest != "help"]
    assert [a.dest for a in actions] == [f.name for f in fields(SearchRun)]
    for action, spec in zip(actions, fields(SearchRun)):
        assert action.help.startswith(option_of(spec).help)
        assert action.default is None  # a flag left out keeps the field's default
    choices = {a.dest: tuple(a.choices) for a in actions if a.choices}
    assert choices == {"method": tuple(SEARCH_STRATEGIES), "preset": ("paper", "official"),
                       "finetune": ("head", "none", "full"),
                       "finetune_optimizer": ("auto", "adagrad", "adam")}
    assert fields(SearchRun)[:len(fields(ScoringRun))] == fields(ScoringRun)


def test_parsed_flags_give_the_run():
    args = parser().parse_args(["--supernet", "s", "--output", "o", "--method", "random",
                                "--budget", "7", "--max-mflops", "2.5", "--no-progress"])
    run = from_args(SearchRun, args)
    assert run == SearchRun(supernet="s", output="o", method="random", budget=7,
                            max_mflops=2.5, progress=False)
    assert from_args(ScoringRun, args) == ScoringRun(supernet="s", output="o", progress=False)


def test_validate_names_the_field():
    SearchRun(supernet="s", output="o").validate()
    with pytest.raises(NASRecError, match="--method random needs --budget N"):
        SearchRun(supernet="s", output="o", method="random").validate()
    with pytest.raises(NASRecError, match=r"field 'method' \(--method\): 'annealing' is not one"):
        SearchRun(supernet="s", output="o", method="annealing").validate()
    with pytest.raises(NASRecError, match="field 'finetune'"):
        SearchRun(supernet="s", output="o", finetune="last").validate()
    with pytest.raises(NASRecError, match=r"field 'output' \(--output\): is required"):
        SearchRun(supernet="s").validate()
    with pytest.raises(NASRecError, match=r"field 'finetune_lr' \(--finetune-lr\): -1.0"):
        SearchRun(supernet="s", output="o", finetune_lr=-1.0).validate()


def test_a_registered_strategy_is_a_choice_of_the_command_and_the_config(monkeypatch):
    with pytest.raises(NASRecError, match="search.method"):
        ExperimentConfig(search=SearchStageConfig(method="hill_climbing")).validate()
    monkeypatch.setitem(SEARCH_STRATEGIES, "hill_climbing", HillClimbing)
    args = parser().parse_args(["--supernet", "s", "--output", "o", "--method",
                                "hill_climbing"])
    from_args(SearchRun, args).validate()
    ExperimentConfig(search=SearchStageConfig(method="hill_climbing")).validate()
    with pytest.raises(NASRecError, match="search.budget"):
        ExperimentConfig(search=SearchStageConfig(method="random")).validate()
    assert option_of(SearchRun.__dataclass_fields__["finetune"]).choices is FINETUNE_MODES
