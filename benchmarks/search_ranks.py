"""The search on several ranks: 2 ranks x 1 thread against 1 rank x 1 thread and 1 rank x 2
threads, with the same settings.

Runs `nasrec search` three times into a work folder (per --repeats round), one
configuration after the other: 1 rank x 1 thread, 2 ranks x 1 thread (torchrun, each rank
scoring its share of every generation from its own copy of the supernet), 1 rank x 2 threads.
Checks that the runs at 1 thread give identical candidates (every field of candidates.jsonl
but the seconds) and the same winner, and reports whether the 2-thread run does too (more
threads may change the last bits of a score). Writes the wall times (the whole command:
start-up, supernet load, search, outputs) and the search loop's own time
(`search.json` timing) of each run, their ratios, and the host record and matrix-product
peaks (`nasrec_torchrec.analysis.host`) to a JSON file.

The settings are those of a pipeline's search (RUN/search/search_run.json, with --run RUN), or
`--supernet DIR [--data DIR]` and the search flags after `--`; --budget / --generations
shorten either.

    python benchmarks/search_ranks.py --run runs/frappe --budget 96 \\
        --output bench_out/search_ranks.json
    python benchmarks/search_ranks.py --supernet runs/supernet --output bench_out/ranks.json \\
        -- --population 8 --sample-size 4 --children 4 --generations 2 --finetune-steps 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

TIMING_KEYS = ("seconds",)
CONFIGURATIONS = ((1, 1), (2, 1), (1, 2))
"""(ranks, threads per rank) of the runs compared."""


def search_argv(args: argparse.Namespace) -> list[str]:
    """The `nasrec search` flags shared by every run (not --output, --threads, --resume)."""
    from dataclasses import replace

    from nasrec_torchrec.artifacts import SEARCH_RUN_FILE, read_json
    from nasrec_torchrec.search.settings import SearchRun
    from nasrec_torchrec.settings import from_mapping, to_argv

    if args.run:
        path = os.path.join(args.run, "search", SEARCH_RUN_FILE)
        if not os.path.exists(path):
            sys.exit(f"{path}: not found (has the pipeline's search run?)")
        run = from_mapping(SearchRun, read_json(path), path)
    else:
        run = SearchRun(supernet=args.supernet, data=args.data)
    changes = {"output": "", "threads": None, "resume": False, "overwrite": True,
               "progress": False}
    for name in ("budget", "generations"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return to_argv(replace(run, **changes)) + list(args.search_args)


def run_search(argv: list[str], output: str, ranks: int, threads: int) -> dict[str, Any]:
    """One `nasrec search` on `ranks` x `threads`; wall seconds and its search.json timing."""
    module = ["-m", "nasrec_torchrec.cli", "search", *argv, "--output", output,
              "--threads", str(threads)]
    command = [sys.executable, *module] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
        str(ranks), *module]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    print(f"$ {ranks} rank(s) x {threads} thread(s): {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    wall = time.perf_counter() - started
    with open(os.path.join(output, "search.json")) as handle:
        summary = json.load(handle)
    timing = summary["timing"]
    return {"ranks": ranks, "threads": threads, "wall_seconds": wall,
            "search_seconds": timing["search_seconds_this_run"],
            "load_seconds": timing["load_seconds"],
            "candidate_seconds_total": timing["candidate_seconds_total"],
            "evaluations": summary["evaluations"], "best_loss": summary["best"]["loss"]}


def candidates(output: str) -> list[dict[str, Any]]:
    """candidates.jsonl without its timing fields."""
    with open(os.path.join(output, "candidates.jsonl")) as handle:
        return [{key: value for key, value in json.loads(line).items()
                 if key not in TIMING_KEYS} for line in handle if line.strip()]


def compare(reference: str, other: str) -> dict[str, Any]:
    """Whether `other`'s candidates and winner are `reference`'s; the largest log-loss gap."""
    mine, theirs = candidates(reference), candidates(other)
    with open(os.path.join(reference, "best_architecture.json")) as a, \
            open(os.path.join(other, "best_architecture.json")) as b:
        same_winner = a.read() == b.read()
    gaps = [abs(x["log_loss"] - y["log_loss"]) for x, y in zip(mine, theirs)
            if x["architecture"] == y["architecture"]]
    return {"identical_candidates": mine == theirs, "same_winner": same_winner,
            "candidates": [len(mine), len(theirs)],
            "same_architectures": [x["architecture"] for x in mine]
            == [y["architecture"] for y in theirs],
            "max_log_loss_difference": max(gaps, default=None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a `nasrec pipeline` output: its search's settings")
    source.add_argument("--supernet", help="a `nasrec train-supernet` run directory")
    parser.add_argument("--data", help="with --supernet: the prepared dataset (default: the "
                        "supernet's)")
    parser.add_argument("--budget", type=int, help="candidates scored (overrides)")
    parser.add_argument("--generations", type=int, help="generations (overrides)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of the three runs (reported: each one's best wall time)")
    parser.add_argument("--work", default="bench_out/search_ranks",
                        help="where the searches write")
    parser.add_argument("--output", default="bench_out/search_ranks.json")
    parser.add_argument("search_args", nargs="*", help="after --: more `nasrec search` flags")
    args = parser.parse_args()

    from nasrec_torchrec.analysis.host import host_record, matmul_peak

    argv = search_argv(args)
    record: dict[str, Any] = {
        "host": host_record(threads=1),
        "matmul_peak": {f"{threads}_threads": matmul_peak(threads=threads)
                        for threads in (1, 2)},
        "search_argv": argv, "repeats": args.repeats, "runs": {},
    }
    outputs = {f"{ranks}x{threads}": os.path.join(args.work, f"{ranks}x{threads}")
               for ranks, threads in CONFIGURATIONS}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in outputs}
    for _ in range(args.repeats):  # the three runs in turn, so a load change hits them alike
        for ranks, threads in CONFIGURATIONS:
            name = f"{ranks}x{threads}"
            results[name].append(run_search(argv, outputs[name], ranks, threads))
    for name, runs_of_name in results.items():
        record["runs"][name] = {**min(runs_of_name, key=lambda run: run["wall_seconds"]),
                                "wall_seconds_all": [run["wall_seconds"] for run in runs_of_name]}
    runs = record["runs"]
    record["ratios"] = {
        f"{a}_over_{b}_{what}": runs[a][f"{what}_seconds"] / runs[b][f"{what}_seconds"]
        for a, b in (("2x1", "1x1"), ("2x1", "1x2"), ("1x2", "1x1"))
        for what in ("wall", "search")}
    record["same_threads_2x1_vs_1x1"] = compare(outputs["1x1"], outputs["2x1"])
    record["more_threads_1x2_vs_1x1"] = compare(outputs["1x1"], outputs["1x2"])
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(record, handle, indent=2)
    for name, run in runs.items():
        print(f"{name}: {run['wall_seconds']:.1f} s wall, search {run['search_seconds']:.1f} s, "
              f"{run['evaluations']} candidates")
    print(f"2 ranks / 1 rank x 1 thread: {record['ratios']['2x1_over_1x1_wall']:.2f} (wall), "
          f"2 ranks / 1 rank x 2 threads: {record['ratios']['2x1_over_1x2_wall']:.2f}; "
          f"candidates identical at 1 thread: "
          f"{record['same_threads_2x1_vs_1x1']['identical_candidates']} -> {args.output}")
    same = record["same_threads_2x1_vs_1x1"]
    return 0 if same["identical_candidates"] and same["same_winner"] else 1


if __name__ == "__main__":
    sys.exit(main())
