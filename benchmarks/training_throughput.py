"""End-to-end training throughput on synthetic Criteo-shaped data, beside the official figures.

Runs the real `nasrec train-supernet` / `nasrec train` commands (sharded embeddings, fused
Adagrad, TorchRec pipeline) at batch 256 and reads the steady-state samples/s from their
`metrics.jsonl` (the median of the logged windows after the first), and each run's peak RSS.

Runs: supernet single-op any-conn (official-full, official-small; cap 0.5M), the full path
(official-full), the official best Criteo Full architecture with capped and with full tables
(the schema's cardinalities replaced by the real Criteo ones: 33.76M rows), and the
official-small supernet on 1 vs 2 processes. Each run also reports its CPU seconds and the
load average (wall-clock rates are noisy on a shared machine).

The JSON starts with the host (`host_record`) and the matrix-product peak measured at the
start of the run at the bodies' own heaviest product shapes (`matmul_peak`, with the threads of
one process); every run gives its samples/s and their fraction of that peak (the body's
forward + backward FLOPs per sample: a supernet's mean over sampled paths; embeddings are not
matrix products and are left out). The official implementation's samples/s are kept as a
reference measured on ANOTHER host (it is not available to run here): not a comparison.

    python benchmarks/training_throughput.py --output bench_out/training_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
OFFICIAL_ARCH = (REPO.parent / "shared" / "reference" / "official_configs"
                 / "ea_criteo_kaggle_xlarge_best_1shot.json")
# samples/s of the official implementation (facebookresearch/NasRec) measured on ANOTHER host
# (the machine of issue #4; its CPU was not recorded): a reference, not comparable with this
# host's figures.
OFFICIAL_ELSEWHERE = {
    "host": "another host (issue #4's machine, CPU not recorded); not this host",
    "samples_per_second": {"supernet official-full": 226, "supernet official-small": 546,
                           "full path official-full": 62, "criteo best, full tables": 68,
                           "criteo best, capped tables": 584}}
BODY_SAMPLE_PATHS = 16  # supernet paths averaged for a supernet run's FLOPs per sample


def _nasrec(*args: str, processes: int = 1) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "nasrec_torchrec.cli", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", "-m", "nasrec_torchrec.cli", *args]


def body_profiles(official: Path) -> dict[str, tuple[float, list]]:
    """Run kind -> (training FLOPs per sample, heaviest product shapes) of its body at batch
    256 on Criteo shapes (13 dense, 26 sparse x 16)."""
    import random

    from bench_host import body_training_profile

    from nasrec_torchrec.nn.networks import NASRecNet, Supernet
    from nasrec_torchrec.space import get_space, load_official, sample_full
    from nasrec_torchrec.space import sample_single_op_any_conn

    profiles = {}
    for space_name in ("official-full", "official-small"):
        supernet = Supernet(get_space(space_name), 13, 26)
        rng = random.Random(0)
        runs = [body_training_profile(supernet, 256, 13, 26, 16,
                                      sample_single_op_any_conn(supernet.space, rng))
                for _ in range(BODY_SAMPLE_PATHS)]
        profiles[f"supernet {space_name}"] = (statistics.mean(f for f, _ in runs), runs[0][1])
        if space_name == "official-full":
            profiles["full path official-full"] = body_training_profile(
                supernet, 256, 13, 26, 16, sample_full(supernet.space, rng))
    if official.is_file():
        net = NASRecNet(load_official(official)[0], 13, 26, layer_norm=False)
        profiles["criteo best"] = body_training_profile(net, 256, 13, 26, 16)
    return profiles


def _profile_of(name: str, profiles: dict) -> Optional[float]:
    """Training FLOPs per sample of run `name`."""
    for kind, (flops, _) in profiles.items():
        if name.startswith(kind):
            return flops
    return None


def _run(name: str, command: list[str], output: Path, threads: int) -> dict:
    """Run one training command; steady-state samples/s from its metrics, peak RSS of it."""
    shutil.rmtree(output, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    # A wrapper process per run: its RUSAGE_CHILDREN peak is this run's alone.
    wrapper = ("import resource, subprocess, sys; "
               "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
               "stderr=subprocess.DEVNULL); "
               "usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(usage.ru_maxrss, usage.ru_utime + usage.ru_stime)")
    finished = subprocess.run([sys.executable, "-c", wrapper, *command], check=True, env=env,
                              capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kb, cpu_seconds = map(float, finished.stdout.split()[-2:])
    rates = [json.loads(line)["samples_per_second"]
             for line in (output / "metrics.jsonl").read_text().splitlines()]
    steady = statistics.median(rates[1:] or rates)
    row = {"run": name, "samples_per_second": round(steady, 1), "wall_seconds": round(seconds, 1),
           "peak_rss_gb": round(peak_kb / 2**20, 2),
           "cpu_seconds": round(cpu_seconds, 1), "load_average": os.getloadavg()[0]}
    print(json.dumps(row), flush=True)
    return row


def _full_cardinality_copy(data: Path, target: Path) -> Path:
    """The same prepared data with the schema's tables sized as the real Criteo ones."""
    from nasrec_torchrec.data.synthetic import CRITEO_CARDINALITIES

    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for entry in data.iterdir():
        if entry.is_dir():
            os.symlink(entry.resolve(), target / entry.name)
        elif entry.name != "schema.json":
            shutil.copy(entry, target / entry.name)
    schema = json.loads((data / "schema.json").read_text())
    for feature, cardinality in zip(schema["sparse"], CRITEO_CARDINALITIES):
        feature["num_rows"] = max(feature["num_rows"], cardinality + 1)
    (target / "schema.json").write_text(json.dumps(schema, indent=2))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a prepared Criteo-shaped dataset "
                        "(default: synthesise 200k rows into the work directory)")
    parser.add_argument("--work", type=Path, default=Path("bench_out/training_throughput"))
    parser.add_argument("--steps", type=int, default=300, help="steps per run")
    parser.add_argument("--threads", type=int, default=2, help="threads per process")
    parser.add_argument("--official-architecture", type=Path, default=OFFICIAL_ARCH)
    parser.add_argument("--only", nargs="*", help="run only the runs whose name contains one "
                        "of these words")
    parser.add_argument("--output", type=Path, default=Path("bench_out/training_throughput.json"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        data = args.work / "data"
        if not (data / "schema.json").exists():
            subprocess.run(_nasrec("synth", "--like", "criteo", "--rows", "200000", "--output",
                                   str(data), "--overwrite"), check=True)
    common = ["--batch-size", "256", "--max-steps", str(args.steps), "--log-every", "25",
              "--eval-split", "", "--no-progress", "--lr-schedule", "constant",
              "--threads", str(args.threads)]
    runs: list[tuple[str, list[str], int]] = []
    for space in ("official-full", "official-small"):
        runs.append((f"supernet {space}", ["train-supernet", "--space", space, "--strategy",
                                           "single_op_any_conn", "--path-warmup", "0",
                                           "--data", str(data)], 1))
    runs.append(("full path official-full", ["train-supernet", "--space", "official-full",
                                             "--strategy", "full", "--path-warmup", "0",
                                             "--data", str(data)], 1))
    if args.official_architecture.is_file():
        arch = str(args.official_architecture)
        runs.append(("criteo best, capped tables",
                     ["train", "--arch", arch, "--no-layer-norm", "--data", str(data)], 1))
        full_data = _full_cardinality_copy(data, args.work / "data_full_cardinality")
        runs.append(("criteo best, full tables", ["train", "--arch", arch, "--no-layer-norm",
                                                  "--full-tables", "--data", str(full_data)], 1))
    runs.append(("supernet official-small, 2 processes",
                 ["train-supernet", "--space", "official-small", "--strategy",
                  "single_op_any_conn", "--path-warmup", "0", "--data", str(data)], 2))
    from bench_host import peak_section, throughput

    profiles = body_profiles(args.official_architecture)
    shapes = sorted({shape for _, top in profiles.values() for shape in top})
    results = {**peak_section(shapes, args.threads), "batch_size": 256,
               "threads_per_process": args.threads, "steps": args.steps, "data": str(data),
               "runs": [], "reference_from_another_host": OFFICIAL_ELSEWHERE}
    for name, stage_args, processes in runs:
        if args.only and not any(word in name for word in args.only):
            continue
        output = args.work / name.replace(" ", "_").replace(",", "")
        threads = max(1, args.threads // processes)
        command = _nasrec(*stage_args, "--output", str(output), *common[:-1], str(threads),
                          processes=processes)
        row = _run(name, command, output, threads)
        row.update(throughput(row["samples_per_second"], _profile_of(name, profiles),
                              results["matmul_peak"]))
        results["runs"].append(row)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
