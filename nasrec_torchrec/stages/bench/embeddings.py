"""Stage `bench embeddings`: how fast and how big embedding tables train, as they grow.

For each table size of a sweep, on every rank of the job (torchrun, or one process): the
tables sharded by `DistributedModelParallel` under each sharding type asked for, and the raw
FBGEMM kernel on the same tables in one process (rank 0) beside them (`embedding_steps`).
Each configuration reports the plan (per table: sharding type, ranks, shards), samples/s of
forward + backward + the tables' Adagrad update, and per rank the peak resident set and the
bytes of the tables and optimizer state it holds. Writes `embedding_benchmark.json` (after
every configuration, `complete` once all are; with the host record and matrix-product peak),
`embedding_benchmark.md` and `embedding_benchmark.png` to the output folder.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from nasrec_torchrec.artifacts import make_directory, write_json, write_text
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.train.config import DEVICE_CHOICES

if TYPE_CHECKING:  # torch's: imported where a run starts
    from nasrec_torchrec.stages.bench.embedding_steps import StepShape
    from nasrec_torchrec.train.distributed import DistributedContext

logger = logging.getLogger(__name__)

AUTO = "auto"  # the planner's own choice among the sharded types (`default_constraints`)
DATA_PARALLEL = "data_parallel"
SHARDING_CHOICES = (AUTO, "table_wise", "row_wise", "column_wise", "table_column_wise",
                    DATA_PARALLEL)
BYTES_PER_VALUE = 4 * 2  # an fp32 weight and its exact Adagrad accumulator

BENCH_FILE = "embedding_benchmark.json"
BENCH_REPORT_FILE = "embedding_benchmark.md"
BENCH_PLOT_FILE = "embedding_benchmark.png"
DEFAULT_TOTAL_ROWS = (1e6, 1e7)
# Estimated memory of a configuration: its tables and optimizer state times this.
MEMORY_OVERHEAD = 1.3


@dataclass
class EmbeddingBenchRun:
    """A `bench embeddings` run (see the flags' help for each field)."""

    output: str = option("", "folder for embedding_benchmark.json, .md and .png",
                         metavar="DIR", path=True)
    total_rows: Optional[list[float]] = option(
        None, "total table rows at each point of the sweep, e.g. 1e6 34e6 (default 1e6 1e7); "
        "26 tables shaped like Criteo's, or --num-tables equal ones", metavar="ROWS",
        minimum=1)
    rows_per_table: Optional[list[float]] = option(
        None, "rows of every table at each point of the sweep, instead of --total-rows",
        metavar="ROWS", minimum=1)
    num_tables: Optional[int] = option(None, "number of equal tables (default: 26, Criteo's "
                                       "shape with --total-rows)", minimum=1)
    embedding_dim: int = option(16, "embedding dimension of every table", minimum=1)
    batch_size: int = option(4096, "samples per step over all ranks (split evenly)", minimum=1)
    pooling_factor: int = option(1, "ids per table per sample (uniform over the table)",
                                 minimum=1)
    sharding_types: list[str] = option(
        default_factory=lambda: ["table_wise", "row_wise", "column_wise"],
        help="sharding types compared ('auto': the planner's own choice)",
        choices=SHARDING_CHOICES)
    kernel: bool = option(True, "skip the raw FBGEMM kernel (one process, every table)",
                          flag="--no-kernel")
    steps: int = option(20, "timed steps per configuration", minimum=1)
    warmup_steps: int = option(3, "untimed steps before them", minimum=0)
    max_memory_gb: Optional[float] = option(
        None, "skip a configuration whose tables and optimizer state (x1.3) would take more "
        "than this per rank", above=0.0, metavar="GB")
    device: str = option("auto", "compute device (NCCL on CUDA, gloo on CPU)",
                         choices=DEVICE_CHOICES)
    threads: Optional[int] = option(None, "intra-op threads per rank (default: "
                                    "OMP_NUM_THREADS, else the cores shared by the local "
                                    "ranks)", minimum=1)
    seed: int = option(0, "seed of the ids")
    progress: bool = option(True, "no progress bar", flag="--no-progress")


def _whole(values: Sequence[float], name: str, flag: str, source: str) -> list[int]:
    for value in values:
        if value != int(value):
            raise NASRecError(f"{source}: field '{name}' ({flag}): {value!r} is not a whole "
                              "number of rows")
    return [int(value) for value in values]


def criteo_shaped(total_rows: int) -> list[int]:
    """26 tables in the proportions of Criteo's cardinalities, at least 2 rows each, summing
    to about `total_rows`."""
    from nasrec_torchrec.data.synthetic import CRITEO_CARDINALITIES

    scale = total_rows / sum(CRITEO_CARDINALITIES)
    return [max(2, round(rows * scale)) for rows in CRITEO_CARDINALITIES]


def sweep_tables(run: EmbeddingBenchRun, source: str = "bench embeddings") -> list[list[int]]:
    """The rows of every table at each point of the sweep (validated: `NASRecError` naming
    the flag)."""
    if run.total_rows and run.rows_per_table:
        raise NASRecError(f"{source}: give --total-rows or --rows-per-table, not both")
    if run.rows_per_table:
        tables = run.num_tables or 26
        return [[rows] * tables for rows in _whole(run.rows_per_table, "rows_per_table",
                                                   "--rows-per-table", source)]
    totals = _whole(run.total_rows or DEFAULT_TOTAL_ROWS, "total_rows", "--total-rows", source)
    if run.num_tables is None:
        return [criteo_shaped(total) for total in totals]
    sweep = []
    for total in totals:
        if total < run.num_tables:
            raise NASRecError(f"{source}: field 'total_rows' (--total-rows): {total} rows "
                              f"cannot fill --num-tables {run.num_tables} tables")
        share, extra = divmod(total, run.num_tables)
        sweep.append([share + (index < extra) for index in range(run.num_tables)])
    return sweep


def validate(run: EmbeddingBenchRun, source: str = "bench embeddings") -> list[list[int]]:
    """Check every setting of `run` (bounds, choices, required, the sweep); the sweep."""
    check(run, source)
    if not run.output:
        raise NASRecError(f"{source}: field 'output' (--output): is required")
    if not run.sharding_types:
        raise NASRecError(f"{source}: field 'sharding_types' (--sharding-types): give at "
                          "least one")
    return sweep_tables(run, source)


def estimated_rank_bytes(table_rows: Sequence[int], embedding_dim: int, path: str,
                         world_size: int) -> int:
    """The bytes the most loaded rank needs for a configuration (`path`: "kernel" or a
    sharding type), tables and optimizer state times `MEMORY_OVERHEAD`."""
    tables = [rows * embedding_dim * BYTES_PER_VALUE for rows in table_rows]
    total = sum(tables)
    if path == "kernel":
        need = total
    elif path == DATA_PARALLEL:  # replicated, plus a dense gradient of every table
        need = total * 3 // 2
    elif path in ("row_wise", "column_wise"):
        need = math.ceil(total / world_size)
    else:
        need = max(max(tables), math.ceil(total / world_size))
    return int(need * MEMORY_OVERHEAD)


def _configurations(run: EmbeddingBenchRun, sweep: list[list[int]], world_size: int
                    ) -> list[dict[str, Any]]:
    """One record per configuration (size x path), before it is measured."""
    paths = (["kernel"] if run.kernel else []) + list(dict.fromkeys(run.sharding_types))
    records = []
    for table_rows in sweep:
        for path in paths:
            kernel = path == "kernel"
            record: dict[str, Any] = {
                "path": "kernel" if kernel else "sharded",
                "sharding_type": None if kernel else path,
                "ranks": 1 if kernel else world_size, "total_rows": sum(table_rows),
                "num_tables": len(table_rows), "table_rows": table_rows,
                "total_table_bytes": sum(table_rows) * run.embedding_dim * BYTES_PER_VALUE}
            need = estimated_rank_bytes(table_rows, run.embedding_dim, path, world_size)
            if run.max_memory_gb is not None and need > run.max_memory_gb * 2**30:
                record["skipped"] = (f"needs ~{need / 2**30:.1f} GB per rank > "
                                     f"--max-memory-gb {run.max_memory_gb:g}")
            records.append(record)
    return records


def _measure(record: dict[str, Any], shape: StepShape, context: DistributedContext) -> None:
    """Measure one configuration on every rank; its results go into `record` (all ranks)."""
    import torch.distributed as dist

    from nasrec_torchrec.stages.bench.embedding_steps import measure_kernel, measure_sharded
    from nasrec_torchrec.train.distributed import barrier, broadcast_object

    if record["path"] == "kernel":
        measured = None
        if context.is_main:
            measured = measure_kernel(record["table_rows"], shape, context.device)
            measured["rank"] = 0
        barrier()
        ranks = [broadcast_object(measured)]
    else:
        try:
            measured = measure_sharded(record["table_rows"], record["sharding_type"], shape,
                                       context)
        except NASRecError as error:  # the same on every rank (`plan_tables`)
            record["error"] = str(error)
            return
        measured["rank"] = context.rank
        ranks = [None] * context.world_size
        dist.all_gather_object(ranks, measured)
    first = ranks[0]
    record.update({
        "samples_per_second": shape.batch_size * shape.steps / first["seconds"],
        "step_ms": 1000 * first["seconds"] / shape.steps,
        "build_seconds": max(rank["build_seconds"] for rank in ranks),
        "plan_source": first.get("plan_source"), "plan": first.get("plan"),
        "per_rank": [{key: value for key, value in rank.items()
                      if key not in ("seconds", "build_seconds", "plan", "plan_source")}
                     for rank in ranks]})


def _log_result(record: dict[str, Any]) -> None:
    from nasrec_torchrec.stages.bench.embedding_report import path_label, per_rank_gb, plan_lines

    where = f"{record['total_rows']:,} rows, {path_label(record)} on {record['ranks']} " \
        f"rank{'' if record['ranks'] == 1 else 's'}"
    if "samples_per_second" not in record:
        logger.warning("%s: %s", where, record.get("skipped") or record.get("error"))
        return
    if record.get("plan"):
        logger.info("%s: plan (%s):\n  %s", where, record["plan_source"],
                    "\n  ".join(plan_lines(record["plan"])))
    logger.info("%s: %s samples/s, %.2f ms/step; peak RSS %s GB, tables %s GB per rank",
                where, f"{record['samples_per_second']:,.0f}", record["step_ms"],
                per_rank_gb(record, "peak_rss_bytes"), per_rank_gb(record, "table_bytes"))


def _write_outputs(summary: dict[str, Any], output: str) -> None:
    from nasrec_torchrec.analysis.plots import plot_embedding_benchmark
    from nasrec_torchrec.stages.bench.embedding_report import markdown_report, plot_series

    write_text(os.path.join(output, BENCH_REPORT_FILE), markdown_report(summary))
    plot_embedding_benchmark(
        plot_series(summary["results"]), os.path.join(output, BENCH_PLOT_FILE),
        title=f"Embedding tables: {summary['table_shape']}, dim "
        f"{summary['config']['embedding_dim']}, batch {summary['config']['batch_size']}, "
        f"{summary['world_size']} rank(s) on {summary['device']}")


def embedding_benchmark(run: EmbeddingBenchRun, source: str = "bench embeddings"
                        ) -> dict[str, Any]:
    """Run the sweep of `run` on every rank of the job; the content of
    `embedding_benchmark.json` (on every rank; rank 0 writes the files)."""
    sweep = validate(run, source)
    import torch

    from nasrec_torchrec.analysis.host import host_record, matmul_peak
    from nasrec_torchrec.stages.bench.embedding_steps import StepShape
    from nasrec_torchrec.train.distributed import barrier, init_distributed, teardown

    context = init_distributed(run.device, run.threads)
    try:
        if run.batch_size % context.world_size:
            raise NASRecError(f"{source}: field 'batch_size' (--batch-size): {run.batch_size} "
                              f"does not split evenly over {context.world_size} ranks")
        threads = torch.get_num_threads()
        shape = StepShape(run.embedding_dim, run.batch_size, run.pooling_factor, run.steps,
                          run.warmup_steps, run.seed)
        summary: dict[str, Any] = {
            "config": asdict(run), "world_size": context.world_size,
            "device": str(context.device), "backend": context.backend,
            "threads_per_rank": threads,
            "table_shape": (f"{len(sweep[0])} equal tables" if run.num_tables or
                            run.rows_per_table else "26 tables shaped like Criteo's"),
            "host": None, "matmul_peak": None, "complete": False,
            "results": _configurations(run, sweep, context.world_size)}
        if context.is_main:
            make_directory(run.output)
            summary["host"] = host_record(threads)
            summary["matmul_peak"] = matmul_peak(threads=threads)
        barrier()
        progress = None
        if context.is_main and run.progress:
            from tqdm import tqdm

            progress = tqdm(total=len(summary["results"]), unit="config", desc=source,
                            dynamic_ncols=True)
        try:
            for record in summary["results"]:
                if "skipped" not in record:
                    _measure(record, shape, context)
                if context.is_main:
                    _log_result(record)
                    write_json(os.path.join(run.output, BENCH_FILE), summary)
                if progress is not None:
                    progress.update(1)
        finally:
            if progress is not None:
                progress.close()
        summary["complete"] = True
        if context.is_main:
            write_json(os.path.join(run.output, BENCH_FILE), summary)
            _write_outputs(summary, run.output)
        barrier()
        return summary
    finally:
        teardown(context)
