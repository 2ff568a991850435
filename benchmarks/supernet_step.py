"""A training step of supernet paths and of a standalone NASRecNet, against the host's peak.

One step = forward + backward + optimizer at batch 256 on Criteo shapes (13 dense, 26 sparse
x 16), the body only (dense [B, 13] and pooled embeddings [B, 26, 16] as inputs):

* `supernet SPACE`: the supernet of each space (LayerNorm on, as supernet training) on
  single-op any-conn paths, slice gradients + `SlicedAdagrad` (what `train-supernet` does);
  every round runs new paths; the full path of the first space is timed too;
* `nasrecnet`: the official best Criteo Full architecture (`--official-architecture`) as a
  `NASRecNet` with LayerNorm (its `use_layernorm`, and `nasrec train`'s default) and the
  dense optimizer `nasrec train` gives it (torch's Adagrad, fused).

Each is measured in fp32 and in bf16 (`torch.autocast` around the forward, fp32 weights, as
`--precision bf16`). Time is CPU seconds of this process (`time.process_time`: steadier than
the wall clock on a shared machine), in `--rounds` rounds; the median round is reported. The
JSON holds the host (`host_record`), the matrix-product peak measured at the start of the run
at the benchmark's own heaviest product shapes (`matmul_peak`), and per row: samples/s, GFLOP
per CPU second (`torch.utils.flop_counter`, 2 FLOPs per multiply-add, forward + backward) and
its fraction of the peak; then the profiler's share of matrix products in a step (self CPU
time of mm/addmm/bmm/baddbmm), the products' own rate in the step (GFLOP per CPU second of
the products alone: fraction of peak = share x that rate / peak) and the ceiling at these
shapes (the step's products each timed alone: what the step would reach if everything else
were free).

    OMP_NUM_THREADS=1 python benchmarks/supernet_step.py --output bench_out/supernet_step.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
from pathlib import Path
from typing import Optional

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from nasrec_torchrec.analysis.host import fraction_of_peak, host_record, matmul_peak
from nasrec_torchrec.analysis.matmul_profile import gemm_calls, isolated_cpu_seconds, top_shapes
from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.space import get_space, load_official, sample_full, sample_single_op_any_conn
from nasrec_torchrec.train.optimizers import dense_optimizer
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad

DEFAULT_OFFICIAL = (Path(__file__).resolve().parents[1].parent / "shared" / "reference"
                    / "official_configs" / "ea_criteo_kaggle_xlarge_best_1shot.json")
PRODUCT_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
COMPILED_GRAPHS = "compiled graphs (inductor's fused kernels)"
# s/step of the official implementation (facebookresearch/NasRec) measured on ANOTHER host
# (the machine of issue #4; its CPU was not recorded): not comparable with this host's figures.
OFFICIAL_ELSEWHERE = {"host": "another host (issue #4's machine, CPU not recorded)",
                      "official_s_per_step": {"official-full": 1.13, "official-small": 0.47,
                                              "official-full full path": 4.1}}


class Workload:
    """A model, its optimizer and inputs: `step(path)` trains one step, `flop(path)` counts."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 batch: int, precision: str, store: Optional[SliceGradients] = None) -> None:
        self.model, self.optimizer, self.store = model, optimizer, store
        self.dense, self.sparse = torch.randn(batch, 13), torch.randn(batch, 26, 16)
        self.precision = precision
        self._flops: dict[object, float] = {}

    def _loss(self, path) -> torch.Tensor:
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16"
                    else contextlib.nullcontext())
        with autocast:
            logits = (self.model(self.dense, self.sparse) if path is None
                      else self.model(self.dense, self.sparse, path))
        return logits.float().sum()

    def step(self, path) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._loss(path).backward()
        self.optimizer.step()

    def forward_backward(self, path) -> None:
        """Forward + backward, leaving no gradient behind."""
        self._loss(path).backward()
        self.optimizer.zero_grad(set_to_none=True)
        if self.store is not None:
            self.store.clear()

    def flop(self, path) -> float:
        """FLOPs of one forward + backward on `path` (cached)."""
        if path not in self._flops:
            with FlopCounterMode(display=False) as counter:
                self.forward_backward(path)
            self._flops[path] = counter.get_total_flops()
        return self._flops[path]


def supernet_workload(space_name: str, batch: int, precision: str) -> Workload:
    supernet = Supernet(get_space(space_name), 13, 26)
    store = SliceGradients()
    attach_slice_gradients(supernet, store)
    return Workload(supernet, SlicedAdagrad(supernet.parameters(), store, lr=0.04), batch,
                    precision, store)


def nasrecnet_workload(path: Path, batch: int, precision: str) -> Workload:
    architecture, _ = load_official(path)
    net = NASRecNet(architecture, 13, 26, layer_norm=True)
    return Workload(net, dense_optimizer(net, learning_rate=0.04), batch, precision)


def time_rounds(work: Workload, rounds: list[list], warmup: list) -> list[dict]:
    """CPU seconds and FLOPs of each round of paths (after `warmup` untimed steps)."""
    for path in warmup:
        work.step(path)
    measured = []
    for paths in rounds:
        flops = sum(work.flop(path) for path in paths)
        start = time.process_time()
        for path in paths:
            work.step(path)
        measured.append({"cpu_s": time.process_time() - start, "steps": len(paths),
                         "flop": flops})
    return measured


def profile_share(work: Workload, paths: list) -> dict:
    """The profiler's self CPU time of a few steps: the matrix products' share, and the five
    largest other ops' shares (a `torch.compile`d body's graphs summed as `COMPILED_GRAPHS`)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for path in paths:
            work.step(path)
    totals: dict[str, float] = {}
    for row in prof.key_averages():  # a compiled body's graphs: one entry, not one per hash
        key = COMPILED_GRAPHS if "CompiledFxGraph" in row.key else row.key
        totals[key] = totals.get(key, 0) + row.self_cpu_time_total
    whole = sum(totals.values())
    others = sorted(((key, value) for key, value in totals.items() if key not in PRODUCT_OPS),
                    key=lambda item: -item[1])[:5]
    return {"matmul_share": round(sum(totals.get(op, 0) for op in PRODUCT_OPS) / whole, 3),
            "largest_other_ops": {key: round(value / whole, 3) for key, value in others}}


def ceiling(work: Workload, paths: list) -> dict:
    """GFLOP per CPU second of the paths' products each timed alone (nothing else costing)."""
    calls = [call for path in paths for call in gemm_calls(lambda: work.forward_backward(path))]
    flops = sum(call.flops for call in calls)
    return {"gemm_gflop": round(flops / 1e9, 3),
            "gemm_gflop_per_cpu_s_alone": round(flops / isolated_cpu_seconds(calls) / 1e9, 1)}


def summarise(name: str, work: Workload, measured: list[dict], batch: int, peak: dict,
              extra: dict) -> dict:
    """The median round as samples/s, GFLOP per CPU second and fraction of the peak."""
    per_round = sorted(measured, key=lambda r: r["flop"] / r["cpu_s"])
    middle = per_round[len(per_round) // 2]
    gflops = middle["flop"] / middle["cpu_s"] / 1e9
    row = {"run": name, "precision": work.precision,
           "samples_per_cpu_s": round(batch * middle["steps"] / middle["cpu_s"], 1),
           "step_cpu_ms": round(1e3 * middle["cpu_s"] / middle["steps"], 2),
           "gflop_per_step": round(middle["flop"] / middle["steps"] / 1e9, 3),
           "gflop_per_cpu_s": round(gflops, 1),
           "fraction_of_peak": fraction_of_peak(gflops, peak, work.precision, clock="cpu"),
           "fraction_of_fp32_peak": fraction_of_peak(gflops, peak, "fp32", clock="cpu"),
           "rounds_gflop_per_cpu_s": [round(r["flop"] / r["cpu_s"] / 1e9, 1) for r in measured],
           **extra}
    if "matmul_share" in extra:  # fraction_of_peak = matmul_share x the products' own rate
        in_step = gflops / extra["matmul_share"]
        row["gemm_gflop_per_cpu_s_in_step"] = round(in_step, 1)
        row["gemm_in_step_fraction_of_peak"] = fraction_of_peak(in_step, peak, work.precision,
                                                                clock="cpu")
        row["gemm_alone_fraction_of_peak"] = fraction_of_peak(
            extra["gemm_gflop_per_cpu_s_alone"], peak, work.precision, clock="cpu")
    print(json.dumps(row), flush=True)
    return row


def benchmark_shapes(batch: int, official: Path, spaces: list[str]) -> list[tuple[int, int, int]]:
    """The heaviest 2-D product shapes of the NASRecNet step and of a few supernet paths."""
    calls = []
    if official.is_file():
        work = nasrecnet_workload(official, batch, "fp32")
        calls += gemm_calls(lambda: work.forward_backward(None))
    work = supernet_workload(spaces[0], batch, "fp32")
    rng = random.Random(1)
    for _ in range(5):
        path = sample_single_op_any_conn(work.model.space, rng)
        calls += gemm_calls(lambda: work.forward_backward(path))
    return top_shapes(calls, 4)


def measure(args: argparse.Namespace, peak: dict) -> list[dict]:
    rows = []
    batch = args.batch_size
    for precision in args.precisions:
        for space_name in args.spaces:
            work = supernet_workload(space_name, batch, precision)
            rng = random.Random(0)
            draw = [sample_single_op_any_conn(work.model.space, rng)
                    for _ in range(args.warmup + args.rounds * args.paths)]
            rounds = [draw[args.warmup + k * args.paths:args.warmup + (k + 1) * args.paths]
                      for k in range(args.rounds)]
            extra = {"space": space_name, "paths_per_round": args.paths,
                     **profile_share(work, draw[:10]), **ceiling(work, draw[:5])}
            rows.append(summarise(f"supernet {space_name}", work,
                                  time_rounds(work, rounds, draw[:args.warmup]), batch, peak,
                                  extra))
            if space_name == args.spaces[0] and args.full_path:
                full = sample_full(work.model.space, rng)
                rows.append(summarise(f"supernet {space_name} full path", work,
                                      time_rounds(work, [[full] * 2] * 3, [full]), batch,
                                      peak, {"space": space_name}))
        if args.official_architecture.is_file():
            work = nasrecnet_workload(args.official_architecture, batch, precision)
            paths = [None] * args.steps
            extra = {"architecture": args.official_architecture.name, "layer_norm": True,
                     "parameters": sum(p.numel() for p in work.model.parameters()),
                     **profile_share(work, paths[:10]), **ceiling(work, [None])}
            rows.append(summarise("nasrecnet", work,
                                  time_rounds(work, [paths] * args.rounds, [None] * 3),
                                  batch, peak, extra))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=["official-full", "official-small"])
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"),
                        default=["fp32", "bf16"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--paths", type=int, default=20, help="supernet paths per round")
    parser.add_argument("--steps", type=int, default=20, help="NASRecNet steps per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-full-path", dest="full_path", action="store_false",
                        help="skip the full path of the first space")
    parser.add_argument("--official-architecture", type=Path, default=DEFAULT_OFFICIAL,
                        help="an official architecture JSON (skipped when absent)")
    parser.add_argument("--output", type=Path, default=Path("bench_out/supernet_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    host = host_record(args.threads)
    shapes = benchmark_shapes(args.batch_size, args.official_architecture, args.spaces)
    peak = matmul_peak(shapes, threads=args.threads)
    print(json.dumps({"host": host, "matmul_peak": peak}), flush=True)
    results = {"host": host, "matmul_peak": peak, "batch_size": args.batch_size,
               "threads": args.threads, "rows": measure(args, peak),
               "matmul_peak_at_end": matmul_peak(shapes, threads=args.threads),
               "load_average_at_end": host_record(args.threads)["load_average_1m"],
               "reference_from_another_host": OFFICIAL_ELSEWHERE}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
