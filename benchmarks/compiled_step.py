"""A NASRecNet training step, eager against `torch.compile`d, against the host's peak.

The workload is `supernet_step.py`'s `nasrecnet` one: the official best Criteo Full
architecture (`--official-architecture`) as a `NASRecNet` with LayerNorm, fused Adagrad,
batch 256, dense [B, 13] and pooled embeddings [B, 26, 16] as inputs (the embedding lookups
are not part of the step: in training they stay eager). One step = forward + backward +
optimizer, as there. The compiled variants compile the body in place (`module.compile`,
inductor, `dynamic=False`; the optimizer stays eager) in each `--modes` mode ("default",
"max-autotune-no-cudagraphs"), as `nasrec train --compile` compiles a found architecture.

Per precision (fp32; bf16 = `torch.autocast` around the forward, fp32 weights, as
`--precision bf16`) and mode the JSON holds: the compile seconds with an empty inductor cache
(wall clock and this process's CPU time of the first two steps: inductor also compiles in
worker processes, whose CPU time is not counted); then, after warm-up, the eager step and
each compiled one timed in interleaved rounds (eager, mode 1, mode 2, eager, ...: a change
of the shared machine's load falls on all of them) of `--steps` steps, in CPU seconds of
this process, median of `--rounds` rounds: samples per CPU second, GFLOP per CPU second, its
fraction of the peak (of the precision's peak and of the fp32 peak) and the speed-up over
the eager step of the same precision; and the profiler's share of matrix products in a step
(inductor's fused kernels summed as one "compiled graphs" entry).

    OMP_NUM_THREADS=1 python benchmarks/compiled_step.py --output bench_out/compiled_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from nasrec_torchrec.analysis.host import host_record, matmul_peak

sys.path.insert(0, str(Path(__file__).resolve().parent))

from supernet_step import (  # noqa: E402
    DEFAULT_OFFICIAL, Workload, benchmark_shapes, ceiling, nasrecnet_workload, profile_share,
    summarise, time_rounds)

EAGER = "eager"


def compile_seconds(work: Workload, mode: str, steps: int = 2) -> dict:
    """Compile `work`'s body in place in `mode` with an empty inductor cache (what a first
    run pays); wall and CPU seconds of the first `steps` steps (the forward and backward
    graphs are compiled in the first one)."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try:
            work.model.compile(mode=None if mode == "default" else mode, dynamic=False)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                work.step(None)
        finally:
            del os.environ["TORCHINDUCTOR_CACHE_DIR"]
    return {"compile_wall_s": round(time.perf_counter() - wall, 1),
            "compile_cpu_s": round(time.process_time() - cpu, 1)}


def measure(args: argparse.Namespace, peak: dict) -> list[dict]:
    """Per precision: the eager step and each mode's compiled step, timed in interleaved
    rounds (eager, mode 1, mode 2, eager, ...) so that a change of the machine's load
    falls on all of them."""
    rows = []
    for precision in args.precisions:
        torch._dynamo.reset()
        works: dict[str, Workload] = {}
        extras: dict[str, dict] = {}
        for mode in [EAGER, *args.modes]:
            torch.manual_seed(0)
            work = nasrecnet_workload(args.official_architecture, args.batch_size, precision)
            work.flop(None)  # counted on the eager body, before any compile
            extras[mode] = {"mode": mode, "architecture": args.official_architecture.name}
            if mode != EAGER:
                extras[mode].update(compile_seconds(work, mode))
            works[mode] = work
        products_alone = ceiling(works[EAGER], [None])
        measured: dict[str, list[dict]] = {mode: [] for mode in works}
        for mode, work in works.items():
            extras[mode].update(profile_share(work, [None] * 10))
            extras[mode].update(products_alone)
            time_rounds(work, [], [None] * 3)
        for _ in range(args.rounds):
            for mode, work in works.items():
                measured[mode] += time_rounds(work, [[None] * args.steps], [])
        eager_rate = None
        for mode, work in works.items():
            row = summarise(f"nasrecnet {mode}", work, measured[mode], args.batch_size, peak,
                            extras[mode])
            eager_rate = eager_rate or row["gflop_per_cpu_s"]
            row["speedup_over_eager"] = round(row["gflop_per_cpu_s"] / eager_rate, 3)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", nargs="+", default=["default", "max-autotune-no-cudagraphs"],
                        help="torch.compile modes timed after the eager step")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"),
                        default=["fp32", "bf16"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--official-architecture", type=Path, default=DEFAULT_OFFICIAL,
                        help="an official architecture JSON")
    parser.add_argument("--output", type=Path, default=Path("bench_out/compiled_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    host = host_record(args.threads)
    shapes = benchmark_shapes(args.batch_size, args.official_architecture, ["official-full"])
    peak = matmul_peak(shapes, threads=args.threads)
    print(json.dumps({"host": host, "matmul_peak": peak}), flush=True)
    results = {"host": host, "matmul_peak": peak, "batch_size": args.batch_size,
               "threads": args.threads, "rows": measure(args, peak),
               "matmul_peak_at_end": matmul_peak(shapes, threads=args.threads),
               "load_average_at_end": host_record(args.threads)["load_average_1m"]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
