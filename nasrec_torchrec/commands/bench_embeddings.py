"""Embedding tables as they grow: samples/s and memory per rank, per sharding type.

For each table size of the sweep (--total-rows: 26 tables shaped like Criteo's, or
--num-tables equal ones; or --rows-per-table), the tables are sharded over every rank by
DistributedModelParallel under each --sharding-types (the planner's plan; row_wise is
hand-written on CPU, where the planner never proposes it; 'auto' is the planner's own
choice), and the raw FBGEMM kernel holds the same tables in one process (rank 0; --no-kernel
skips it). A step: the forward of every table (--pooling-factor ids per table per sample,
uniform over its rows), the backward of the summed pooled embeddings, and exact Adagrad
(fused into the backward; data_parallel tables: torch Adagrad after the all-reduce).

Prints each plan (per table: sharding type and ranks) and result; writes to --output:
embedding_benchmark.json (every configuration with its plan and per-rank peak RSS and
table bytes, the host record and its matrix-product peak; rewritten after each
configuration), embedding_benchmark.md (the table below and every plan) and
embedding_benchmark.png (samples/s and memory per rank against the total rows).
Run it on N ranks with torchrun (gloo on CPU, NCCL on CUDA) or TorchX
(launchers/components.py:embedding_benchmark); one process without.

Examples:
  nasrec bench embeddings --output bench_out/embeddings --total-rows 1e6 1e7 \\
      --sharding-types table_wise row_wise
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli bench embeddings \\
      --output bench_out/embeddings_2 --total-rows 1e6 1e7 1e8 --max-memory-gb 10
  nasrec bench embeddings --output bench_out/uniform --rows-per-table 1e5 1e6 \\
      --num-tables 8 --embedding-dim 64 --pooling-factor 4 --sharding-types auto
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.bench.embeddings import (
    BENCH_FILE, BENCH_PLOT_FILE, BENCH_REPORT_FILE, EmbeddingBenchRun, embedding_benchmark)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec bench embeddings`: one per field of `EmbeddingBenchRun`."""
    add_options(parser, EmbeddingBenchRun)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; print the results table (rank 0)."""
    from nasrec_torchrec.stages.bench.embedding_report import results_table

    bench_run = from_args(EmbeddingBenchRun, args)
    summary = embedding_benchmark(bench_run, "nasrec bench embeddings")
    if int(os.environ.get("RANK", "0")) == 0:
        print(results_table(summary["results"]))
        names = ", ".join(os.path.join(bench_run.output, name)
                          for name in (BENCH_FILE, BENCH_REPORT_FILE, BENCH_PLOT_FILE))
        print(f"wrote {names}")
    return 0
