"""Whole training runs in a fresh one-rank process: how one rank of a multi-rank job trains its
share of runs (a retraining's candidates, a ranking study's subnets).

In the ranks' own process the job's process group is initialised, and the trainer (DMP,
checkpoints, metrics) would use it. A rank's share is trained instead in a child process
started without the torchrun environment, whose `init_distributed` makes a one-rank group of
its own: every run is trained exactly as a lone process trains it, whichever rank takes it.
The runs' `TrainConfig`s travel as JSON: `python -m nasrec_torchrec.train.fresh_process
RUNS.json`; each run's results are its `results.json`.

Example::

    results = train_in_fresh_process([config_a, config_b])  # [results_a, results_b]
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any, Callable, Optional, Sequence

from nasrec_torchrec.artifacts import RESULTS_FILE, read_json, write_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.config import TrainConfig

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                      "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME",
                      "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
                      "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS",
                      "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_ERROR_FILE")
"""What torchrun sets for its workers; a child process without them is a lone process."""


def environment_without_torchrun() -> dict[str, str]:
    """This process's environment without the torchrun variables; on a machine with GPUs,
    the child sees only this local rank's GPU (as its `cuda:0`)."""
    env = {key: value for key, value in os.environ.items() if key not in TORCHRUN_VARIABLES}
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None:
        import torch

        if torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            devices = visible.split(",") if visible else \
                [str(index) for index in range(torch.cuda.device_count())]
            env["CUDA_VISIBLE_DEVICES"] = devices[int(local_rank) % len(devices)]
    return env


_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies


def _die_with_parent(parent: int, prctl: Any) -> None:
    """In a forked child before exec: SIGTERM when `parent` dies (Linux `prctl`, looked up
    before the fork), so a killed rank leaves no orphan training on; exit at once if it
    died already."""
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def run_child(argv: Sequence[str], env: Optional[dict[str, str]] = None) -> int:
    """Run `argv` as a child process that dies with this one (killing this process, even
    with SIGKILL, stops the child too, on Linux); its exit code."""
    parent = os.getpid()
    prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None
    return subprocess.run(list(argv), env=env, check=False,
                          preexec_fn=lambda: _die_with_parent(parent, prctl)).returncode


def run_records_in_child(module: str, records: list[dict[str, Any]], what: str) -> None:
    """Run `python -m MODULE RUNS.json` (`records` as JSON) in a fresh one-rank child process
    that dies with this one; `NASRecError` naming `what` when it fails."""
    with tempfile.TemporaryDirectory(prefix="nasrec_runs_") as folder:
        runs_file = os.path.join(folder, "runs.json")
        write_json(runs_file, records)
        code = run_child([sys.executable, "-m", module, runs_file],
                         environment_without_torchrun())
    if code:
        raise NASRecError(f"{what} in a fresh process failed (exit {code}; its messages are "
                          "above)")


def records_main(module: str, run: Callable[[str, list[Any]], None],
                 argv: Optional[Sequence[str]] = None) -> int:
    """The entry point of a child of `run_records_in_child`: `run(RUNS.json, its records)`;
    a user's error (`NASRecError`) is printed and exits 2."""
    from nasrec_torchrec.logs import setup_logging, verbose_from_environment

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(f"usage: python -m {module} RUNS.json", file=sys.stderr)
        return 2
    setup_logging(verbose_from_environment())
    try:
        run(args[0], read_json(args[0]))
    except NASRecError as error:
        print(f"nasrec: error: {error}", file=sys.stderr)
        return 2
    return 0


def train_in_fresh_process(configs: Sequence[TrainConfig]) -> list[dict[str, Any]]:
    """Train each run of `configs`, one after the other, in one child process of this rank
    alone (see the module); their `results.json` dicts, in order.

    The runs share the child's device and threads (those of `configs[0]`).
    """
    if not configs:
        return []
    run_records_in_child(__name__, [config.to_dict() for config in configs],
                         f"training {len(configs)} run(s) ({configs[0].output} ...)")
    return [read_json(os.path.join(config.output, RESULTS_FILE)) for config in configs]


def train_runs(configs: Sequence[TrainConfig]) -> None:
    """Train `configs` one after the other in this (lone) process, on a one-rank group."""
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.model_trainer import model_trainer

    context = init_distributed(configs[0].device, configs[0].threads)
    try:
        for config in configs:
            trainer = model_trainer(config, context)
            trainer.fit()
            del trainer
            gc.collect()
    finally:
        teardown(context)


def _train_records(path: str, records: list[Any]) -> None:
    train_runs([TrainConfig.from_dict(record, source=f"{path}: run {index}")
                for index, record in enumerate(records)])


if __name__ == "__main__":
    sys.exit(records_main("nasrec_torchrec.train.fresh_process", _train_records))
