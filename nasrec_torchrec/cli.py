"""The `nasrec` command: one subcommand per stage, each in `nasrec_torchrec.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.logs import setup_logging, verbose_from_environment

# Subcommand name -> module in nasrec_torchrec.commands defining `add_arguments(parser)`,
# `run(args) -> int` and a module docstring whose first line is the one-line help.
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
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="nasrec",
        description="Weight-sharing neural architecture search for CTR models on TorchRec. "
        "Run 'nasrec <stage> --help' for the options of a stage.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging with timestamps, including TorchRec's, FBGEMM's "
                        "and torch's own lines and warnings (or NASREC_VERBOSE=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="<stage>", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
        doc = (module.__doc__ or "").strip()
        sub = subparsers.add_parser(
            name, help=doc.splitlines()[0] if doc else None, description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nasrec` console script."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose or verbose_from_environment())
    try:
        return int(args._module.run(args) or 0)
    except NASRecError as error:
        command = f"nasrec {args.command}"
        message = str(error).removeprefix(f"{command}: ")  # a stage names its command too
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
