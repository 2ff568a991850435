"""Typed settings: flags, help, mappings and checks derived from one dataclass (pure Python)."""

import argparse
from dataclasses import dataclass, field
from typing import Optional

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import (StrictParser, add_options, check, flag_of, from_args,
                                      from_mapping, option, to_argv)

SCHEDULES = {"cosine": None, "constant": None}


@dataclass
class Inner:
    lr: float = option(0.04, "learning rate", flag="--lr", above=0.0)
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas", minimum=0.0, cli=False)


@dataclass
class Run:
    steps: Optional[int] = option(None, "stop after N steps", minimum=1)
    schedule: str = option("cosine", "LR schedule", choices=lambda: sorted(SCHEDULES))
    shuffle: bool = option(True, "shuffle the rows")
    resume: bool = option(False, "continue")
    inputs: list[str] = option(default_factory=list, help="input files")
    train: Inner = field(default_factory=Inner)
    notes: str = ""


def parse(argv):
    parser = argparse.ArgumentParser()
    add_options(parser, Run)
    return parser, from_args(Run, parser.parse_args(argv))


def test_flags_come_from_the_fields():
    parser, run = parse(["--steps", "5", "--schedule", "constant", "--no-shuffle", "--resume",
                         "--inputs", "a", "b", "--lr", "0.1"])
    assert run == Run(steps=5, schedule="constant", shuffle=False, resume=True,
                      inputs=["a", "b"], train=Inner(lr=0.1))
    text = parser.format_help()
    assert "--no-shuffle" in text and "(default 0.04)" in text
    assert "--betas" not in text and "--notes" not in text


def test_flags_not_given_keep_the_base():
    _, run = parse([])
    assert run == Run()
    base = Run(steps=7, train=Inner(lr=0.5))
    parser = argparse.ArgumentParser()
    add_options(parser, Run)
    assert from_args(Run, parser.parse_args(["--resume"]), base) == Run(
        steps=7, resume=True, train=Inner(lr=0.5))


def test_choices_follow_the_registry():
    SCHEDULES["step"] = None
    try:
        _, run = parse(["--schedule", "step"])
        assert run.schedule == "step"
    finally:
        del SCHEDULES["step"]
    with pytest.raises(SystemExit):
        parse(["--schedule", "step"])


def test_check_names_source_field_and_flag():
    with pytest.raises(NASRecError, match=r"run.yaml: field 'steps' \(--steps\): 0 must be at "
                                          r"least 1"):
        check(Run(steps=0), "run.yaml")
    with pytest.raises(NASRecError, match=r"field 'train.lr' \(--lr\): -1.0 must be greater "
                                          r"than 0.0"):
        check(Run(train=Inner(lr=-1.0)), "nasrec train")
    with pytest.raises(NASRecError, match=r"field 'schedule' \(--schedule\): 'linear' is not "
                                          r"one of constant, cosine"):
        check(Run(schedule="linear"), "x")
    with pytest.raises(NASRecError, match=r"'train.lr' \(--lr\): nan is not a number"):
        check(Run(train=Inner(lr=float("nan"))), "x")
    check(Run(), "x")


def test_from_mapping_types_and_unknown_fields():
    run = from_mapping(Run, {"steps": 3, "train": {"lr": 1, "betas": [0.5, 0.6]}}, "f.yaml")
    assert run.train == Inner(lr=1.0, betas=(0.5, 0.6)) and isinstance(run.train.lr, float)
    assert from_mapping(Run, {"train": None}, "f.yaml").train == Inner()
    with pytest.raises(NASRecError, match=r"f.yaml: unknown field 'train.rate'"):
        from_mapping(Run, {"train": {"rate": 1}}, "f.yaml")
    with pytest.raises(NASRecError, match=r"f.yaml: field 'steps': expected int, got 'x'"):
        from_mapping(Run, {"steps": "x"}, "f.yaml")
    with pytest.raises(NASRecError, match=r"field 'train.betas': expected 2 values, got 1"):
        from_mapping(Run, {"train": {"betas": [0.5]}}, "f.yaml")
    with pytest.raises(NASRecError, match=r"field 'shuffle': expected bool, got null"):
        from_mapping(Run, {"shuffle": None}, "f.yaml")


def test_flag_names():
    fields_by_name = {f.name: f for f in Run.__dataclass_fields__.values()}
    assert flag_of(fields_by_name["shuffle"]) == "--no-shuffle"
    assert flag_of(fields_by_name["resume"]) == "--resume"


@dataclass
class WithOptional:
    inner: Optional[Inner] = None
    steps: int = option(1, "steps")


def test_an_optional_dataclass_is_a_value_not_a_section():
    parser = argparse.ArgumentParser()
    add_options(parser, WithOptional)
    assert "--lr" not in parser.format_help()
    assert from_args(WithOptional, parser.parse_args(["--steps", "2"])) == WithOptional(steps=2)
    assert from_mapping(WithOptional, {"inner": None}, "f").inner is None
    assert from_mapping(WithOptional, {"inner": {"lr": 2}}, "f").inner == Inner(lr=2.0)


def test_to_argv_rebuilds_the_config():
    run = Run(steps=3, shuffle=False, inputs=["a", "b"], train=Inner(lr=0.5))
    argv = to_argv(run)
    assert argv == ["--steps", "3", "--no-shuffle", "--inputs", "a", "b", "--lr", "0.5"]
    _, again = parse(argv)
    assert again == run


def test_strict_parser_raises_instead_of_exiting():
    parser = StrictParser(prog="config.yaml: field 'supernet.args'")
    add_options(parser, Run)
    with pytest.raises(NASRecError, match=r"field 'supernet.args'.*unrecognized arguments: --x"):
        parser.parse_args(["--x"])
    with pytest.raises(NASRecError, match="invalid int value"):
        parser.parse_args(["--steps", "many"])


@dataclass
class Resumable:
    data: str = option("", "dataset", path=True)
    lr: float = option(0.04, "learning rate", flag="--lr")
    threads: Optional[int] = option(None, "threads", fixed_on_resume=False)
    train: Inner = field(default_factory=Inner)
    model: Optional[dict] = None


def test_changed_settings_lists_what_a_resume_must_keep(tmp_path, monkeypatch):
    from dataclasses import asdict

    from nasrec_torchrec.settings import changed_settings

    monkeypatch.chdir(tmp_path)
    recorded = asdict(Resumable(data=str(tmp_path / "data"), model={"layers": [1, 2]}))
    same = Resumable(data="data", threads=8, model={"layers": [1, 2]})  # threads may change
    assert changed_settings(same, recorded) == []
    changed = Resumable(data="other", lr=0.1, train=Inner(betas=(0.5, 0.999)),
                        model={"layers": [1]})
    assert changed_settings(changed, recorded) == [
        f"data (--data): '{tmp_path / 'data'}' -> 'other'", "lr (--lr): 0.04 -> 0.1",
        "train.betas: [0.9, 0.999] -> [0.5, 0.999]",
        "model: {'layers': [1, 2]} -> {'layers': [1]}"]
    del recorded["lr"]  # a field an older run did not record counts as its default
    assert changed_settings(same, recorded) == []
