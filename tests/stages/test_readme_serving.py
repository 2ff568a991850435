"""The README's "Using a found model in your own TorchRec code" is the tested path: its python
snippets and its `nasrec` commands run as written, in order, in a directory where
`runs/demo/final` is a trained run; the example scripts it names exist (tests/examples runs
them)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from nasrec_torchrec.cli import COMMANDS

from serving_helpers import run_command

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Using a found model in your own TorchRec code"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section_blocks() -> list[tuple[str, str]]:
    """`(language, code)` of every fenced block of the section, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return FENCE.findall(text[start:end])


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a bash block (continuation lines joined), split into words."""
    return [shlex.split(line) for line in code.replace("\\\n", " ").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_section_shows_load_model_predict_and_export():
    blocks = section_blocks()
    python = "\n".join(code for language, code in blocks if language == "python")
    commands = [words for language, code in blocks if language == "bash"
                for words in shell_commands(code)]
    assert "nasrec_torchrec.load_model(" in python and "torch.export.load(" in python
    assert {words[1] for words in commands if words[0] == "nasrec"} >= {"predict", "export"}
    scripts = {word for words in commands for word in words if word.startswith("examples/")}
    assert scripts == {"examples/train_found_architecture.py", "examples/train_baseline.py"}
    assert all((ROOT / script).is_file() for script in scripts)


def test_the_sections_snippets_and_commands_run_as_written(architecture_run, tmp_path,
                                                           monkeypatch, capsys):
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    os.symlink(architecture_run, tmp_path / "runs" / "demo" / "final")
    os.symlink(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    ran = []
    for language, code in section_blocks():
        if language == "python":
            exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
            ran.append("python")
            continue
        for words in shell_commands(code):
            if words[0] == "nasrec":  # the example scripts: tests/examples
                assert run_command(COMMANDS[words[1]], words[2:]) == 0, words
                ran.append(words[1])
    assert ran.count("python") == 4 and {"predict", "export", "synth"} <= set(ran)
    assert (tmp_path / "runs" / "scores.parquet").is_file()
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith("tensor([") and len(re.findall(r"0\.\d+", printed)) == 2
