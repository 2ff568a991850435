"""Embedding lookup + fused Adagrad update: throughput and peak memory as the tables grow.

For each total table size (26 tables shaped like Criteo's cardinalities, scaled to the total),
measures steady-state samples/s of forward + backward (exact Adagrad fused in the backward) and
the peak RSS of every process:

* `fbgemm`: the raw FBGEMM kernel alone (`SplitTableBatchedEmbeddingBagsCodegen` on CPU,
  one process) on the same tables: the ceiling;
* `dmp`: our path (`nasrec_torchrec.embeddings.shard_model`: `DistributedModelParallel`,
  fused kernel) for 1 and 2 ranks and each sharding type (table_wise, column_wise from the
  planner's constraints; row_wise from a hand-written plan, the planner never proposes it on
  CPU).

Every configuration runs in fresh processes (torchrun-style for 2 ranks), so peak RSS is its
own. Configurations whose estimated memory (weights + Adagrad state, x1.3) exceeds
--max-memory-gb are skipped. Ids are uniform over each table's rows, one per feature per sample.

Examples:
  python benchmarks/large_embeddings.py --total-rows 1e6 34e6 --output large_embeddings.json
  python benchmarks/large_embeddings.py --total-rows 1e8 --world-sizes 1 --kinds fbgemm dmp \\
      --sharding-types table_wise --max-memory-gb 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

# Criteo Kaggle (display advertising challenge) cardinalities of C1..C26: 33.76M rows in all.
CRITEO_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
    14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
BYTES_PER_ROW_PER_DIM = 4 * 2  # fp32 weight + exact Adagrad accumulator


def table_rows(total_rows: int) -> list[int]:
    """Criteo-shaped table sizes scaled so they sum to about `total_rows` (at least 2 each)."""
    scale = total_rows / sum(CRITEO_CARDINALITIES)
    return [max(2, int(round(rows * scale))) for rows in CRITEO_CARDINALITIES]


def estimated_bytes(total_rows: int, dim: int) -> int:
    return int(total_rows * dim * BYTES_PER_ROW_PER_DIM * 1.3)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- workers (run in their own processes) ---------------------------------------------------

def _inputs(rows: list[int], batch: int, steps: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(steps):
        ids = torch.stack([torch.randint(0, n, (batch,), generator=generator) for n in rows])
        batches.append(ids)  # [T, B], one id per feature per sample
    return batches


def worker_fbgemm(config: dict[str, Any]) -> dict[str, Any]:
    """The raw FBGEMM TBE on CPU: forward, backward with a fused exact Adagrad update."""
    import torch
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
        ComputeDevice, EmbeddingLocation, SplitTableBatchedEmbeddingBagsCodegen)

    torch.set_num_threads(config["threads"])
    rows, dim, batch = config["rows"], config["dim"], config["batch_size"]
    start = time.perf_counter()
    tbe = SplitTableBatchedEmbeddingBagsCodegen(
        embedding_specs=[(n, dim, EmbeddingLocation.HOST, ComputeDevice.CPU) for n in rows],
        optimizer=EmbOptimType.EXACT_ADAGRAD, learning_rate=0.04, eps=1e-8)
    build_seconds = time.perf_counter() - start
    batches = _inputs(rows, batch, config["warmup"] + config["steps"], config["seed"])
    offsets = torch.arange(0, len(rows) * batch + 1, dtype=torch.int64)

    def step(ids):
        pooled = tbe(ids.reshape(-1).contiguous(), offsets)  # [B, T * D]
        pooled.sum().backward()

    for ids in batches[:config["warmup"]]:
        step(ids)
    start = time.perf_counter()
    for ids in batches[config["warmup"]:]:
        step(ids)
    seconds = time.perf_counter() - start
    return {"samples_per_second": batch * config["steps"] / seconds,
            "step_ms": 1000 * seconds / config["steps"], "build_seconds": build_seconds,
            "peak_rss_gb": [peak_rss_bytes() / 2**30]}


def worker_dmp(config: dict[str, Any]) -> dict[str, Any]:
    """Our path: an EBC on the meta device, sharded by `shard_model` (fused Adagrad)."""
    import torch
    import torch.distributed as dist
    from torchrec.distributed.planner.types import ParameterConstraints
    from torchrec.modules.embedding_configs import EmbeddingBagConfig
    from torchrec.modules.embedding_modules import EmbeddingBagCollection
    from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

    from nasrec_torchrec.embeddings import manual_plan, shard_model
    from nasrec_torchrec.train.distributed import init_distributed, teardown

    context = init_distributed("cpu", config["threads"])
    try:
        rows, dim = config["rows"], config["dim"]
        world, rank = context.world_size, context.rank
        batch = config["batch_size"] // world  # per rank; the global batch is the same
        names = [f"f{i}" for i in range(len(rows))]

        class Embeddings(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.ebc = EmbeddingBagCollection(tables=[
                    EmbeddingBagConfig(name=f"t_{name}", embedding_dim=dim, num_embeddings=n,
                                       feature_names=[name]) for name, n in zip(names, rows)],
                    device=torch.device("meta"))

            def forward(self, features: KeyedJaggedTensor) -> torch.Tensor:
                pooled = self.ebc(features).to_dict()
                return torch.stack([pooled[name] for name in names], dim=1).sum()

        model = Embeddings()
        start = time.perf_counter()
        sharding = config["sharding_type"]
        if sharding == "row_wise":
            dmp = shard_model(model, context.device,
                              plan=manual_plan(model, sharding, world, context.device))
        else:
            constraints = {f"t_{name}": ParameterConstraints(
                sharding_types=[sharding], compute_kernels=["fused"]) for name in names}
            dmp = shard_model(model, context.device, constraints=constraints, batch_size=batch)
        build_seconds = time.perf_counter() - start
        all_ids = _inputs(rows, config["batch_size"], config["warmup"] + config["steps"],
                          config["seed"])
        lengths = torch.ones(len(rows) * batch, dtype=torch.int32)
        features = [KeyedJaggedTensor(keys=names,
                                      values=ids[:, rank * batch:(rank + 1) * batch].reshape(-1),
                                      lengths=lengths, stride=batch)
                    for ids in all_ids]

        def step(kjt):
            dmp(kjt).backward()

        for kjt in features[:config["warmup"]]:
            step(kjt)
        dist.barrier()
        start = time.perf_counter()
        for kjt in features[config["warmup"]:]:
            step(kjt)
        dist.barrier()
        seconds = time.perf_counter() - start
        rss: list[Any] = [None] * world
        dist.all_gather_object(rss, peak_rss_bytes() / 2**30)
        return {"samples_per_second": config["batch_size"] * config["steps"] / seconds,
                "step_ms": 1000 * seconds / config["steps"], "build_seconds": build_seconds,
                "peak_rss_gb": rss, "rank": rank,
                "plan_types": sorted({p.sharding_type for plan in dmp.plan.plan.values()
                                      for p in plan.values()})}
    finally:
        teardown(context)


def worker_main(config_json: str) -> None:
    config = json.loads(config_json)
    result = (worker_fbgemm if config["kind"] == "fbgemm" else worker_dmp)(config)
    if result.pop("rank", 0) == 0:
        print("RESULT " + json.dumps(result), flush=True)


# --- driver -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_config(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one configuration in fresh process(es); its result or its error."""
    here = os.path.abspath(__file__)
    env = dict(os.environ, OMP_NUM_THREADS=str(config["threads"]),
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(here)),
                                           os.environ.get("PYTHONPATH", "")]))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(name, None)
    payload = json.dumps(config)
    if config["world_size"] == 1:
        command = [sys.executable, here, "--worker", payload]
    else:
        command = [sys.executable, "-m", "torch.distributed.run",
                   f"--nproc_per_node={config['world_size']}", f"--master_port={free_port()}",
                   here, "--worker", payload]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            result["wall_seconds"] = time.perf_counter() - start
            return result
    return {"error": f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--total-rows", type=float, nargs="+", default=[1e6, 34e6, 1e8],
                        help="total table rows to measure (default 1e6 34e6 1e8)")
    parser.add_argument("--dim", type=int, default=16, help="embedding dim (default 16)")
    parser.add_argument("--batch-size", type=int, default=4096,
                        help="global batch size (default 4096)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (default 5)")
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sharding-types", nargs="+",
                        default=["table_wise", "column_wise", "row_wise"])
    parser.add_argument("--kinds", nargs="+", default=["fbgemm", "dmp"],
                        choices=["fbgemm", "dmp"])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per process (default: cores / world size)")
    parser.add_argument("--max-memory-gb", type=float, default=20.0,
                        help="skip configurations estimated above this (default 20)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="large_embeddings.json", help="JSON results file")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0

    cores = len(os.sched_getaffinity(0))
    configs = []
    for total in args.total_rows:
        total = int(total)
        base = {"total_rows": total, "rows": table_rows(total), "dim": args.dim,
                "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup,
                "seed": args.seed}
        if "fbgemm" in args.kinds:
            configs.append({**base, "kind": "fbgemm", "world_size": 1,
                            "sharding_type": None, "threads": args.threads or cores})
        if "dmp" in args.kinds:
            for world in args.world_sizes:
                for sharding in args.sharding_types:
                    configs.append({**base, "kind": "dmp", "world_size": world,
                                    "sharding_type": sharding,
                                    "threads": args.threads or max(1, cores // world)})
    results = []
    for config in configs:
        label = (f"{config['kind']:6s} rows={config['total_rows']:>11,d} "
                 f"ranks={config['world_size']} {config['sharding_type'] or '-':11s}")
        need = estimated_bytes(config["total_rows"], config["dim"]) / 2**30
        if need > args.max_memory_gb:
            outcome = {"skipped": f"needs ~{need:.1f} GB > --max-memory-gb {args.max_memory_gb}"}
        else:
            outcome = run_config(config, args.timeout)
        record = {key: value for key, value in config.items() if key != "rows"}
        record.update(outcome)
        results.append(record)
        if "samples_per_second" in outcome:
            print(f"{label} {outcome['samples_per_second']:>10,.0f} samples/s "
                  f"{outcome['step_ms']:8.2f} ms/step peak RSS "
                  f"{max(outcome['peak_rss_gb']):.2f} GB/process", flush=True)
        else:
            print(f"{label} {outcome.get('skipped') or outcome.get('error')}", flush=True)
        with open(args.output, "w") as handle:
            json.dump({"machine": {"cores": cores}, "results": results}, handle, indent=2)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
