"""A zygote for the interruption tests: imports torch and the package once, then runs each
`nasrec ...` command asked for in a forked child, which SIGKILLs itself at a chosen point
(no clean-up can run, as for `kill -9`); a 2-rank job is two forked children set up as
torchrun sets up its workers.

    python kill_driver.py   # then one JSON request per stdin line, one reply per line
    {"argv": [...], "point": "checkpoint", "count": 2, "ranks": 1}  ->  [exit status, ...]

An exit status is the child's exit code, or minus the signal that ended it. POINT is where the
COUNT-th event of a child kills it:
- `checkpoint`: right after a checkpoint is complete;
- `staging`: while a checkpoint is written (its tensors saved, not yet complete);
- `search-state`: right after the search saved its state (a generation is done).
The zygote itself never runs torch, so forking it is safe.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import sys


def _kill_after(owner: object, name: str, count: int) -> None:
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def _child(request: dict, environment: dict[str, str]) -> None:
    """Run the request in this (forked) process; never returns."""
    code = 1
    try:
        os.dup2(2, 1)  # the zygote's stdout carries the replies only
        os.environ.update(environment)
        from nasrec_torchrec.cli import main
        from nasrec_torchrec.search.base import SearchBase
        from nasrec_torchrec.train import checkpoint, trainer

        if request.get("point"):
            owner, name = {"checkpoint": (trainer, "save_checkpoint"),
                           "staging": (checkpoint.dcp, "save"),
                           "search-state": (SearchBase, "save_state")}[request["point"]]
            _kill_after(owner, name, int(request["count"]))
        code = main(request["argv"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(request: dict) -> list[int]:
    ranks = int(request.get("ranks", 1))
    port = str(_free_port())
    children = []
    for rank in range(ranks):
        environment = {} if ranks == 1 else {
            "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(ranks),
            "LOCAL_WORLD_SIZE": str(ranks), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        pid = os.fork()
        if pid == 0:
            _child(request, environment)
        children.append(pid)
    statuses = []
    for pid in children:
        _, status = os.waitpid(pid, 0)
        statuses.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status)
                        else os.WEXITSTATUS(status))
    return statuses


def main() -> None:
    import matplotlib  # noqa: F401  (imported once, before any fork)
    import scipy.stats  # noqa: F401
    import torch  # noqa: F401
    import torchrec  # noqa: F401

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    import nasrec_torchrec.cli  # noqa: F401
    import nasrec_torchrec.stages.final  # noqa: F401
    import nasrec_torchrec.train.trainer  # noqa: F401

    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        print(json.dumps(_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
