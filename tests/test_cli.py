"""How `nasrec` ends: 2 and one line for the user's mistakes, 1 with the traceback and where
to report it for a bug, 130 / 143 and one line when interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from nasrec_torchrec.cli import main
from nasrec_torchrec.commands import synth


def _raising(error: BaseException):
    def run(args):
        raise error
    return run


@pytest.mark.parametrize("error, code, last_line", [
    (ValueError("shapes [3] and [4]"), 1, "nasrec synth: internal error (a bug, not your "
     "input): ValueError: shapes [3] and [4]; please report it to the nasrec_torchrec issue "
     "tracker"),
    (KeyboardInterrupt(), 130, "nasrec synth: interrupted (Ctrl-C); partial outputs were "
     "removed"),
    (PermissionError(13, "Permission denied", "/data/x"), 2,
     "nasrec synth: error: /data/x: Permission denied"),
])
def test_how_a_command_ends(monkeypatch, capsys, error, code, last_line):
    monkeypatch.setattr(synth, "run", _raising(error))
    assert main(["synth", "--like", "criteo", "--rows", "1", "--output", "x"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(last_line)
    assert ("Traceback (most recent call last):" in err) == (code == 1)


def test_sigterm_is_an_interruption_while_a_command_runs(monkeypatch, capsys):
    monkeypatch.setattr(synth, "run", lambda args: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    assert main(["synth", "--like", "criteo", "--rows", "1", "--output", "x"]) == 143
    assert capsys.readouterr().err.strip().startswith("nasrec synth: interrupted (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) == before


def test_the_console_script_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nasrec_torchrec.cli", "synth", "--like", "criteo", "--rows",
         "-1", "--output", str(tmp_path / "out")], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nasrec synth: error: field 'rows' (--rows): -1 must be at least 0"]
    assert not (tmp_path / "out").exists()
