"""Benchmarks of this machine or cluster: `nasrec bench <benchmark> --help` for each.

Each benchmark runs on one process or under torchrun on N ranks, like the training stages,
and writes a JSON (with the host record and its matrix-product peak), a markdown table and a
plot to its --output folder.

Examples:
  nasrec bench embeddings --output bench_out/embeddings --total-rows 1e6 1e7
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli bench embeddings \\
      --output bench_out/embeddings_2 --sharding-types table_wise row_wise
"""

from __future__ import annotations

import argparse
import importlib

# Benchmark name -> module in nasrec_torchrec.commands defining `add_arguments(parser)`,
# `run(args) -> int` and a module docstring whose first line is the one-line help.
BENCHMARKS: dict[str, str] = {
    "embeddings": "bench_embeddings",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per benchmark; each sets the `_module`, `_parser` and `_command` that
    `nasrec_torchrec.cli.main` runs and names errors with (`nasrec bench <benchmark>`)."""
    subparsers = parser.add_subparsers(dest="benchmark", metavar="<benchmark>", required=True)
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
        doc = (module.__doc__ or "").strip()
        sub = subparsers.add_parser(
            name, help=doc.splitlines()[0] if doc else None, description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
        module.add_arguments(sub)
        sub.set_defaults(_module=module, _parser=sub, _command=f"bench {name}")
