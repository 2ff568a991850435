"""Work shared over 2 gloo ranks (`train.ranks`): each rank's share, every result on every
rank in order, rank-0-only steps, and an error on one rank raised on all of them; the
environment of a rank's fresh one-rank process and its end with its parent
(`train.fresh_process`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.fresh_process import TORCHRUN_VARIABLES, environment_without_torchrun
from nasrec_torchrec.train.ranks import on_main_rank, share_of, spread_over_ranks


def _fail_on(failing_rank: int, rank: int, error: Exception, share: list) -> list:
    if rank == failing_rank:
        raise error
    return share


def _outcome(call) -> list:
    try:
        return ["ok", call()]
    except Exception as error:  # the test records which exception each rank saw
        return [type(error).__name__, str(error)]


def _two_rank_sharing(out_dir: str) -> None:
    from nasrec_torchrec.train.distributed import init_distributed, teardown

    context = init_distributed("cpu", num_threads=1)
    try:
        rank = context.rank
        shares: list = []

        def work(share: list) -> list:
            shares.append(share)
            return [f"{item}@{rank}" for item in share]

        record = {
            "results": spread_over_ranks(list("abcde"), work), "shares": shares,
            "empty_share": spread_over_ranks(["z"], work),
            "main": on_main_rank(lambda: f"written by {rank}"),
            "user_error": _outcome(lambda: spread_over_ranks([1, 2], lambda share: _fail_on(
                1, rank, NASRecError("bad.json: field 'x'"), share))),
            "bug": _outcome(lambda: spread_over_ranks([1, 2], lambda share: _fail_on(
                0, rank, ValueError("a bug"), share))),
            "main_error": _outcome(lambda: on_main_rank(lambda: _fail_on(
                0, rank, NASRecError("out: exists"), []))),
            "after": spread_over_ranks([1, 2, 3], lambda share: [2 * x for x in share]),
        }
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump(record, handle)
    finally:
        teardown(context)


def test_two_ranks_share_the_work_and_every_rank_gets_every_result(tmp_path):
    from toy_training import run_ranks  # here: the ranks then import torch alone

    run_ranks(2, _two_rank_sharing, str(tmp_path))
    records = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [record["shares"][:1] for record in records] == [[["a", "c", "e"]], [["b", "d"]]]
    for record in records:
        assert record["results"] == ["a@0", "b@1", "c@0", "d@1", "e@0"]
        assert record["empty_share"] == ["z@0"]  # rank 1 had nothing to do
        assert record["main"] == "written by 0"
        assert record["after"] == [2, 4, 6]  # the ranks go on together after errors
    assert [record["user_error"] for record in records] == [
        ["NASRecError", "rank 1 failed: NASRecError: bad.json: field 'x'"],
        ["NASRecError", "bad.json: field 'x'"]]
    assert [record["bug"] for record in records] == [
        ["ValueError", "a bug"], ["RuntimeError", "rank 0 failed: ValueError: a bug"]]
    assert [record["main_error"] for record in records] == [
        ["NASRecError", "out: exists"], ["NASRecError", "rank 0 failed: NASRecError: out: exists"]]


def test_a_lone_process_does_all_the_work_itself():
    assert spread_over_ranks([3, 1, 2], lambda share: [x * x for x in share]) == [9, 1, 4]
    assert on_main_rank(lambda: "mine") == "mine"
    assert share_of(list(range(7)), 2, 3) == [2, 5]


def test_a_fresh_process_has_no_torchrun_variables(monkeypatch):
    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "29500"),
                        ("LOCAL_RANK", "1"), ("NASREC_VERBOSE", "1")):
        monkeypatch.setenv(name, value)
    env = environment_without_torchrun()
    assert not set(env) & set(TORCHRUN_VARIABLES)
    assert env["NASREC_VERBOSE"] == "1" and env["PATH"] == os.environ["PATH"]


_PARENT = """
import sys
from nasrec_torchrec.train.fresh_process import run_child
run_child([sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"])
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie waiting for its reaper is gone
        return handle.read().split(")")[-1].split()[0] != "Z"


def test_a_child_process_ends_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
