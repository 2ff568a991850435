"""Interrupted `prepare`: SIGTERM cleans up like Ctrl-C, with one line; the folders a killed
run left are removed by the next run once their process is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nasrec_torchrec.cli import main
from nasrec_torchrec.data import shards
from nasrec_torchrec.data.output_dir import _owner_tag, atomic_directory, remove_stale_siblings
from nasrec_torchrec.data.synth import write_synthetic


@pytest.fixture
def raw_criteo(tmp_path: Path) -> str:
    write_synthetic("criteo", 600, str(tmp_path / "raw"), seed=0, raw=True)
    return str(tmp_path / "raw" / "train.txt")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sigterm_removes_the_partial_output_and_prints_one_line(
        tmp_path: Path, raw_criteo: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    original, calls = shards.ShardWriter.write, []

    def terminated_while_writing(self, table):
        calls.append(1)
        if len(calls) == 2:
            assert list(tmp_path.glob(".out.partial-*"))
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, table)

    monkeypatch.setattr(shards.ShardWriter, "write", terminated_while_writing)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["prepare", "--format", "criteo", "--input", raw_criteo, "--output",
                 str(tmp_path / "out"), "--row-group-rows", "100"]) == 143
    assert sorted(os.listdir(tmp_path)) == ["raw"]
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("nasrec prepare: interrupted (SIGTERM); partial outputs were "
                              "removed") and "Traceback" not in "".join(err)
    assert signal.getsignal(signal.SIGTERM) == handler  # put back when the command ends


def test_a_rerun_removes_the_folders_of_killed_runs_only(tmp_path: Path, raw_criteo: str
                                                        ) -> None:
    host = _owner_tag().rsplit("-", 1)[0]
    killed = tmp_path / f".out.partial-{host}-{_dead_pid()}-0a1b2c3d"
    retired = tmp_path / f".out.old-{host}-{_dead_pid()}-0a1b2c3d"
    running = tmp_path / f".out.partial-{_owner_tag()}-99aa88bb"  # this process: alive
    other_host = tmp_path / f".out.partial-elsewhere-{_dead_pid()}-0a1b2c3d"
    other_name = tmp_path / f".data.partial-{host}-{_dead_pid()}-0a1b2c3d"
    for folder in (killed, retired, running, other_host, other_name):
        (folder / "train").mkdir(parents=True)
    assert main(["prepare", "--format", "criteo", "--input", raw_criteo, "--output",
                 str(tmp_path / "out")]) == 0
    assert not killed.exists() and not retired.exists()
    assert running.exists() and other_host.exists() and other_name.exists()
    assert remove_stale_siblings(str(tmp_path / "out")) == []


def test_an_output_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from nasrec_torchrec.errors import NASRecError

    with pytest.raises(NASRecError, match=r"file/out: cannot create the output there"):
        with atomic_directory(str(blocker / "out")):
            pass
