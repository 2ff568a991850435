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

from nasrec_torchrec.commands import add_command_parsers

# Benchmark name -> module in nasrec_torchrec.commands defining `add_arguments(parser)`,
# `run(args) -> int` and a module docstring whose first line is the one-line help.
BENCHMARKS: dict[str, str] = {
    "embeddings": "bench_embeddings",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per benchmark (`nasrec bench <benchmark>`)."""
    subparsers = parser.add_subparsers(dest="benchmark", metavar="<benchmark>", required=True)
    add_command_parsers(subparsers, BENCHMARKS, prefix="bench ")
