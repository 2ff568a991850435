"""Time to score one candidate from a trained supernet, on synthetic Criteo-shaped data.

One candidate = 500 head fine-tuning steps at batch 256 on training rows + log loss and AUC
over the whole validation split (25k rows for `nasrec synth --like criteo --rows 250000`),
in this process on one loaded supernet (`nasrec_torchrec.search.scoring`). On a shared
machine the wall time depends on the other processes: the CPU time of this process
(`time.process_time`) is reported beside it. The official implementation's 170 s (Full
space) / 77 s (Small) per candidate were measured on ANOTHER host (the official code is not
available here): the JSON keeps them as a labelled reference, not a comparison.

Reported per space: what a search pays once (loading the supernet; reading, looking up and
caching the fine-tuning and validation rows: `SubnetScorer.prepare`), then per candidate the
wall and CPU time of each phase (subnet copy, the frozen body's forwards on the fine-tuning
rows, the head's 500 steps, evaluation, FLOPs count), and the bound: the body's FLOPs (rows x
fvcore multiply-adds per sample x 2) against the host's matrix-product peak measured at the
start of the run (`matmul_peak`; the JSON starts with it and `host_record`). A supernet trained a few steps is enough for timing (the
cost does not depend on the weights). Missing data and supernets are made first with
`nasrec synth` and `nasrec train-supernet`. Run it at `--threads 1` and `--threads 2`.

    python benchmarks/score_candidate.py --work bench_out/score_candidate \\
        --output bench_out/score_candidate.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from nasrec_torchrec.analysis.host import fraction_of_peak

# s per candidate of the official implementation (facebookresearch/NasRec) measured on ANOTHER
# host (the machine of an earlier issue; its CPU was not recorded): a reference, not comparable
# with this host's figures.
OFFICIAL_ELSEWHERE = {"host": "another host (CPU not recorded); not this host",
                      "seconds_per_candidate": {"nasrec-small": 77.0, "nasrec-full": 170.0}}


def _nasrec(*args: str) -> None:
    command = [sys.executable, "-m", "nasrec_torchrec.cli", *args]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)


def prepare(work: str, rows: int, spaces: list[str], supernet_steps: int,
            threads: int) -> tuple[str, dict[str, str]]:
    """The synthetic dataset and one briefly trained supernet per space (made if missing)."""
    data = os.path.join(work, "data")
    if not os.path.exists(os.path.join(data, "schema.json")):
        _nasrec("synth", "--like", "criteo", "--rows", str(rows), "--output", data)
    supernets = {}
    for space in spaces:
        run_dir = os.path.join(work, f"supernet_{space}")
        if not os.path.exists(os.path.join(run_dir, "results.json")):
            _nasrec("train-supernet", "--data", data, "--space", space, "--output", run_dir,
                    "--max-steps", str(supernet_steps), "--batch-size", "256",
                    "--eval-split", "", "--no-progress", "--threads", str(threads),
                    "--device", "cpu", "--overwrite")
        supernets[space] = run_dir
    return data, supernets


def measure(run_dir: str, data: str, candidates: int, finetune_steps: int, batch_size: int,
            seed: int, body_batch_size: int, peak: dict) -> dict:
    """One-off (setup) and per-candidate times of scoring `candidates` random subnets."""
    from nasrec_torchrec.search.loading import load_supernet
    from nasrec_torchrec.search.scoring import ScoringConfig, SubnetScorer
    from nasrec_torchrec.space import sample_architecture

    setup: dict = {"load_average_before": os.getloadavg()}
    start = time.perf_counter()
    loaded = load_supernet(run_dir, data)
    setup["load_supernet_seconds"] = time.perf_counter() - start
    scorer = SubnetScorer(loaded.model, loaded.data, loaded.embedding_cap,
                          ScoringConfig(finetune_steps=finetune_steps, batch_size=batch_size,
                                        seed=seed, body_batch_size=body_batch_size))
    start, cpu = time.perf_counter(), time.process_time()
    rows = scorer.prepare()
    setup["cache_rows_seconds"] = time.perf_counter() - start
    setup["cache_rows_cpu_seconds"] = time.process_time() - cpu
    train_rows, eval_rows = rows["train_rows"], rows["eval_rows"]

    rng = random.Random(seed)
    space = loaded.supernet.space
    per_candidate = []
    for _ in range(candidates):
        architecture = sample_architecture(space, rng)
        timings: dict = {}
        begin, cpu_begin = time.perf_counter(), time.process_time()
        net = scorer.subnet(architecture)
        timings["subnet_copy_seconds"] = time.perf_counter() - begin
        mark = time.perf_counter()
        losses = scorer.finetune(net, "head")
        timings["finetune_body_seconds"] = scorer.body_seconds
        timings["finetune_head_steps_seconds"] = time.perf_counter() - mark - scorer.body_seconds
        mark = time.perf_counter()
        net.eval()
        metrics = scorer.evaluate(net)
        timings["eval_seconds"] = time.perf_counter() - mark
        mark = time.perf_counter()
        cost = scorer.cost(architecture, net)
        timings["flops_seconds"] = time.perf_counter() - mark
        timings["total_seconds"] = time.perf_counter() - begin
        timings["total_cpu_seconds"] = time.process_time() - cpu_begin
        body_seconds = timings["finetune_body_seconds"] + timings["eval_seconds"]
        per_candidate.append({
            **timings, "mflops": cost.mflops, "params": cost.params,
            "finetune_steps": len(losses), "val_log_loss": metrics["log_loss"],
            "val_auc": metrics["auc"], "val_rows": metrics["rows"],
            "body_gmacs": (train_rows + eval_rows) * cost.flops / 1e9,
            "body_gmacs_per_second": (train_rows + eval_rows) * cost.flops / body_seconds / 1e9,
        })
        print(f"  {space.name}: {timings['total_seconds']:.2f} s wall, "
              f"{timings['total_cpu_seconds']:.2f} s CPU (copy "
              f"{timings['subnet_copy_seconds']:.2f}, body {timings['finetune_body_seconds']:.2f}"
              f", head steps {timings['finetune_head_steps_seconds']:.2f}, eval "
              f"{timings['eval_seconds']:.2f}, FLOPs {timings['flops_seconds']:.2f}); "
              f"{cost.mflops:.2f} MFLOPs, {per_candidate[-1]['body_gmacs_per_second']:.1f} "
              "GMAC/s", flush=True)
    totals = [c["total_seconds"] for c in per_candidate]
    mean = statistics.mean(totals)
    body_gmacs = statistics.mean(c["body_gmacs"] for c in per_candidate)
    cpu_mean = statistics.mean(c["total_cpu_seconds"] for c in per_candidate)
    phases = {key: statistics.mean(c[key] for c in per_candidate)
              for key in per_candidate[0] if key.endswith("_seconds")}
    body_gflops = 2 * statistics.mean(c["body_gmacs_per_second"] for c in per_candidate)
    return {
        "space": space.name, "supernet": run_dir, "threads": torch_threads(),
        "setup_once": setup, "finetune_rows": train_rows, "val_rows": eval_rows,
        "candidates": per_candidate, "per_candidate_mean": phases,
        "seconds_per_candidate_mean": mean,
        "seconds_per_candidate_median": statistics.median(totals),
        "cpu_seconds_per_candidate_mean": cpu_mean,
        "mflops_mean": statistics.mean(c["mflops"] for c in per_candidate),
        "body_gmacs_per_second_mean": statistics.mean(c["body_gmacs_per_second"]
                                                      for c in per_candidate),
        # the body's FLOPs (2 per multiply-add) per wall second against the host's peak
        "body_gflop_per_second": round(body_gflops, 2),
        "body_fraction_of_peak": fraction_of_peak(body_gflops, peak),
        # the body's multiply-adds at the peak rate: what a candidate would take if every op
        # of the body ran as fast as the peak matrix product (wall rate, this load)
        "body_seconds_at_peak": 2 * body_gmacs / peak["fp32"]["gflops"],
        "load_average_after": os.getloadavg(),
    }


def torch_threads() -> int:
    """The intra-op threads of this process."""
    import torch

    return torch.get_num_threads()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="bench_out/score_candidate",
                        help="where the data and supernets are (made if missing)")
    parser.add_argument("--data", help="an existing prepared dataset (default: synthesise)")
    parser.add_argument("--rows", type=int, default=250_000, help="synthetic rows")
    parser.add_argument("--spaces", nargs="+", default=["nasrec-small", "nasrec-full"])
    parser.add_argument("--supernet-steps", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=3, help="candidates timed per space")
    parser.add_argument("--finetune-steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--body-batch-size", type=int, default=2048,
                        help="rows per frozen-body forward (ScoringConfig.body_batch_size)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="bench_out/score_candidate.json")
    args = parser.parse_args()

    import torch

    from bench_host import peak_section

    torch.set_num_threads(args.threads)
    # the shapes of a wide FC on a body chunk and on a fine-tuning batch
    header = peak_section([(args.body_batch_size, 1024, 512), (args.batch_size, 1024, 512)],
                          args.threads)
    os.makedirs(args.work, exist_ok=True)
    data, supernets = prepare(args.work, args.rows, args.spaces, args.supernet_steps,
                              args.threads)
    data = args.data or data
    results = []
    for space in args.spaces:
        print(f"scoring {args.candidates} candidates of {space} ...", flush=True)
        results.append(measure(supernets[space], data, args.candidates, args.finetune_steps,
                               args.batch_size, args.seed, args.body_batch_size,
                               header["matmul_peak"]))
    report = {
        **header,
        "benchmark": "score_candidate",
        "what": f"{args.finetune_steps} head fine-tuning steps at batch {args.batch_size} + "
                "log loss/AUC over the whole validation split, one loaded supernet",
        "data": data, "rows": args.rows, "threads": args.threads, "results": results,
        "reference_from_another_host": OFFICIAL_ELSEWHERE,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    for result in results:
        setup = result["setup_once"]
        print(f"{result['space']} ({result['threads']} threads): "
              f"{result['seconds_per_candidate_mean']:.2f} s wall per candidate, CPU "
              f"{result['cpu_seconds_per_candidate_mean']:.2f} s; once per search: load "
              f"{setup['load_supernet_seconds']:.1f} s, rows cached "
              f"{setup['cache_rows_seconds']:.1f} s; load average {result['load_average_after']}")
        print(f"  body: {result['mflops_mean']:.2f} MFLOPs mean x {result['finetune_rows']} + "
              f"{result['val_rows']} rows at {result['body_gflop_per_second']:.1f} GFLOP/s, "
              f"{result['body_fraction_of_peak']:.0%} of the peak "
              f"({header['matmul_peak']['fp32']['gflops']:.1f} GFLOP/s): body at the peak "
              f"{result['body_seconds_at_peak']:.2f} s")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
