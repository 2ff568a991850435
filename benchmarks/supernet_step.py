"""Forward+backward (+ Adagrad) time of supernet steps and of a standalone NASRecNet on the CPU.

Measures (forward + backward + Adagrad step), at batch 256 on Criteo shapes (13 dense, 26 sparse × 16): the supernets of the
given spaces under single-op any-conn sampling (mean over sampled paths) and under the full
path, and a published architecture built as a `NASRecNet`. Embeddings are not included
(the body only: dense [B, 13] and pooled embeddings [B, 26, 16] as inputs).

    python benchmarks/supernet_step.py --output bench_out/supernet_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

import torch

from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.space import get_space, load_official, sample_full, sample_single_op_any_conn
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad

DEFAULT_OFFICIAL = (Path(__file__).resolve().parents[1].parent / "shared" / "reference"
                    / "official_configs" / "ea_criteo_kaggle_xlarge_best_1shot.json")


def _step_seconds(module: torch.nn.Module, run, optimizer: torch.optim.Optimizer) -> float:
    start = time.perf_counter()
    cpu_start = time.process_time()
    optimizer.zero_grad(set_to_none=True)
    loss = run().sum()
    loss.backward()
    optimizer.step()
    _CPU_SECONDS.append(time.process_time() - cpu_start)
    return time.perf_counter() - start


# CPU seconds of every step timed (wall time is noisy on a shared machine; CPU time less so).
_CPU_SECONDS: list[float] = []


def _cpu_mean(count: int) -> float:
    """Mean CPU seconds of the last `count` steps timed."""
    return statistics.mean(_CPU_SECONDS[-count:])


def _gflop(run) -> float:
    """GFLOP of one forward + backward (2 FLOPs per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run().sum().backward()
    return counter.get_total_flops() / 1e9


def _inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 13), torch.randn(batch, 26, 16)


def measure_supernet(space_name: str, batch: int, paths: int, warmup: int,
                     slice_gradients: bool) -> dict:
    """Mean step time over `paths` single-op any-conn paths and over full-path steps.

    `slice_gradients`: record the gradients of the used slices only and update them with
    `SlicedAdagrad` (what supernet training does); else full-size autograd + torch Adagrad.
    """
    space = get_space(space_name)
    supernet = Supernet(space, 13, 26)
    if slice_gradients:
        store = SliceGradients()
        attach_slice_gradients(supernet, store)
        optimizer: torch.optim.Optimizer = SlicedAdagrad(supernet.parameters(), store, lr=0.04)
    else:
        optimizer = torch.optim.Adagrad(supernet.parameters(), lr=0.04)
    dense, sparse = _inputs(batch)
    rng = random.Random(0)
    single = []
    for index in range(warmup + paths):
        architecture = sample_single_op_any_conn(space, rng)
        seconds = _step_seconds(supernet, lambda: supernet(dense, sparse, architecture), optimizer)
        if index >= warmup:
            single.append(seconds)
    single_cpu = _cpu_mean(paths)
    full_path = sample_full(space, rng)
    full = [_step_seconds(supernet, lambda: supernet(dense, sparse, full_path), optimizer)
            for _ in range(warmup + 5)][warmup:]
    full_cpu = _cpu_mean(5)
    flop_rng = random.Random(1)
    gflop = statistics.mean(_gflop(lambda: supernet(dense, sparse, sample_single_op_any_conn(
        space, flop_rng))) for _ in range(10))
    optimizer.zero_grad(set_to_none=True)
    if slice_gradients:
        store.clear()
    return {
        "space": space_name,
        "gradients": "slices" if slice_gradients else "full-size autograd",
        "parameters": sum(p.numel() for p in supernet.parameters()),
        "single_op_any_conn_step_s": statistics.mean(single),
        "single_op_any_conn_step_s_median": statistics.median(single),
        "single_op_any_conn_samples_per_s": batch / statistics.mean(single),
        "single_op_any_conn_cpu_s": single_cpu,
        "single_op_any_conn_gflop_fwd_bwd": round(gflop, 3),
        "single_op_any_conn_gflop_per_cpu_s": round(gflop / single_cpu, 1),
        "full_path_step_s": statistics.mean(full),
        "full_path_cpu_s": full_cpu,
        "full_path_samples_per_s": batch / statistics.mean(full),
        "paths": paths,
    }


def measure_architecture(path: Path, batch: int, steps: int, warmup: int) -> dict:
    """Step time of a published architecture built as a standalone `NASRecNet`."""
    architecture, _ = load_official(path)
    net = NASRecNet(architecture, 13, 26, layer_norm=False)
    optimizer = torch.optim.Adagrad(net.parameters(), lr=0.04)
    dense, sparse = _inputs(batch)
    times = [_step_seconds(net, lambda: net(dense, sparse), optimizer)
             for _ in range(warmup + steps)][warmup:]
    cpu = _cpu_mean(steps)
    gflop = _gflop(lambda: net(dense, sparse))
    return {"architecture": str(path.name), "parameters": sum(p.numel() for p in net.parameters()),
            "step_s": statistics.mean(times), "samples_per_s": batch / statistics.mean(times),
            "cpu_s": cpu, "gflop_fwd_bwd": round(gflop, 3),
            "gflop_per_cpu_s": round(gflop / cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=["official-full", "official-small"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--paths", type=int, default=100, help="sampled paths per space")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--official-architecture", type=Path, default=DEFAULT_OFFICIAL,
                        help="an official architecture JSON (skipped when absent)")
    parser.add_argument("--output", type=Path, default=Path("bench_out/supernet_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = {"batch_size": args.batch_size, "threads": args.threads, "supernets": [],
               "load_average_at_start": os.getloadavg(),
               "reference_official_s_per_step": {"official-full": 1.13, "official-small": 0.47,
                                                 "official-full full path": 4.1}}
    for space_name in args.spaces:
        for slice_gradients in (True, False):
            row = measure_supernet(space_name, args.batch_size, args.paths, args.warmup,
                                   slice_gradients)
            results["supernets"].append(row)
            print(json.dumps(row))
    if args.official_architecture.is_file():
        results["architecture"] = measure_architecture(args.official_architecture,
                                                       args.batch_size, 50, args.warmup)
        print(json.dumps(results["architecture"]))
    results["load_average_at_end"] = os.getloadavg()
    os.makedirs(args.output.parent, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
