"""The `nasrec` command: one subcommand per stage, each in `nasrec_torchrec.commands`.

How a command ends: 0 on success; 2 with one line `nasrec <stage>: error: ...` naming the
file, line, field or flag for an error the user caused (a `NASRecError`, a flag argparse
refuses, or a file the system refused); 130 (Ctrl-C) or 143 (SIGTERM, turned into the same interruption so that partial
outputs are cleaned up) with one line; 1 for an internal error (a bug), with its traceback
and where to report it.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import traceback
from typing import Any, Iterator, NoReturn, Sequence

from nasrec_torchrec.commands import add_command_parsers
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.logs import setup_logging, verbose_from_environment

# Subcommand name -> module in nasrec_torchrec.commands defining `add_arguments(parser)`,
# `run(args) -> int` and a module docstring whose first line is the one-line help. A group
# (`bench`) has no `run`: its `add_arguments` adds the group's own subcommands, each setting
# the defaults `_module`, `_parser` and `_command` ("bench embeddings") that `main` uses.
COMMANDS: dict[str, str] = {
    "prepare": "prepare",
    "synth": "synth",
    "train-supernet": "train_supernet",
    "train": "train",
    "search": "search",
    "rank-study": "rank_study",
    "retrain": "retrain",
    "final": "final",
    "baselines": "baselines",
    "evaluate": "evaluate",
    "predict": "predict",
    "export": "export",
    "pipeline": "pipeline",
    "bench": "bench",
}

USER_ERROR = 2
INTERNAL_ERROR = 1
REPORT_BUGS = ("the nasrec_torchrec issue tracker (README.md, 'Reporting a bug'), with the "
               "command line and this traceback")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, like Ctrl-C: clean-ups run on the way out."""


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose error is one line (and exit code 2), not the usage."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = _Parser(
        prog="nasrec",
        description="Weight-sharing neural architecture search for CTR models on TorchRec. "
        "Run 'nasrec <stage> --help' for the options of a stage.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging with timestamps, including TorchRec's, FBGEMM's "
                        "and torch's own lines and warnings (or NASREC_VERBOSE=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>", required=True)
    add_command_parsers(subparsers, COMMANDS)
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises `Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(error: BaseException, command: str) -> str:
    """The message on one line, without a repeated `nasrec <stage>: ` or `<stage>: `."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text.removeprefix(f"{command}: ").removeprefix(f"{command.split()[-1]}: ")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nasrec` console script (see the module doc for its exit codes)."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # named by the stage's parser, with its help
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    setup_logging(args.verbose or verbose_from_environment())
    command = f"nasrec {args._command}"
    try:
        with _sigterm_as_interrupt():
            return int(args._module.run(args) or 0)
    except NASRecError as error:
        print(f"{command}: error: {_one_line(error, command)}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        print(f"{command}: interrupted ({'SIGTERM' if terminated else 'Ctrl-C'}); partial "
              "outputs were removed, a resumable stage continues with --resume",
              file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    except Exception as error:
        if isinstance(error, OSError) and error.filename:  # a file the system refused
            print(f"{command}: error: {error.filename}: {error.strerror or error}",
                  file=sys.stderr)
            return USER_ERROR
        # a bug: say so, show where, and where to report it
        traceback.print_exc()
        print(f"{command}: internal error (a bug, not your input): {type(error).__name__}: "
              f"{_one_line(error, command)}; please report it to {REPORT_BUGS}",
              file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
