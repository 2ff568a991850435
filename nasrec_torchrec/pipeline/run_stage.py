"""Run one `nasrec` command module in a fresh process: `python -m
nasrec_torchrec.pipeline.run_stage MODULE [ARGS...]`.

The pipeline uses it under torchrun for the stages that run on rank 0 alone (prepare,
search): in the ranks' own process the pipeline's process group is initialised, and
collectives such as a distributed-checkpoint load would wait for the other ranks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from typing import Sequence

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                      "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE", "ROLE_NAME",
                      "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
                      "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS",
                      "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_ERROR_FILE")


def run_module(module_name: str, argv: Sequence[str]) -> int:
    """Parse `argv` with the command module's parser and run it in this process."""
    module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
    parser = argparse.ArgumentParser(prog=f"nasrec {module_name}")
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(list(argv))) or 0)


def run_in_fresh_process(module_name: str, argv: Sequence[str]) -> int:
    """`run_module` in a child process without the torchrun environment; its exit code."""
    env = {key: value for key, value in os.environ.items() if key not in TORCHRUN_VARIABLES}
    command = [sys.executable, "-m", "nasrec_torchrec.pipeline.run_stage", module_name, *argv]
    return subprocess.run(command, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `MODULE [ARGS...]`."""
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.logs import setup_logging, verbose_from_environment

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m nasrec_torchrec.pipeline.run_stage MODULE [ARGS...]",
              file=sys.stderr)
        return 2
    setup_logging(verbose_from_environment())
    try:
        return run_module(args[0], args[1:])
    except NASRecError as error:
        print(f"nasrec {args[0]}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
