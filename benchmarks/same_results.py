"""Compare the results of two pipeline runs: do the same commands give the same numbers?

Compares, between two `nasrec pipeline` output directories (e.g. one made before a refactor
and one after, with the same config and `--threads`): every search candidate (architecture,
scores, costs; not its seconds), the retrain table (search and retrained metrics per
candidate, the winner), the supernet's and the final model's metrics. Timings, paths and
recorded configs are not compared. Prints each difference and writes the verdict as JSON.

Usage:
  python benchmarks/same_results.py BEFORE_DIR AFTER_DIR [--output same_results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterator

TIMING_KEYS = {"seconds", "train_seconds", "samples_per_second", "seconds_this_run", "timing",
               "evaluation_seconds", "total_seconds", "dir"}


def _jsonl(path: str) -> list[dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _json(path: str) -> Any:
    with open(path) as handle:
        return json.load(handle)


def compared_records(run: str) -> dict[str, Any]:
    """The numbers of a pipeline run that must not change, by name."""
    records: dict[str, Any] = {}
    for index, candidate in enumerate(_jsonl(os.path.join(run, "search", "candidates.jsonl"))):
        records[f"search/candidate {index}"] = candidate
    retrain = _json(os.path.join(run, "retrain", "retrain.json"))
    for row in retrain["candidates"]:
        records[f"retrain/rank {row['rank']}"] = row
    records["retrain/best"] = retrain["best"]
    records["retrain/best architecture"] = _json(
        os.path.join(run, "retrain", "best_architecture.json"))
    supernet = _json(os.path.join(run, "supernet", "results.json"))
    records["supernet/metrics"] = {key: supernet.get(key) for key in
                                   ("steps", "val", "final_train_loss")}
    final = _json(os.path.join(run, "final", "results.json"))
    records["final/metrics"] = {key: final.get(key) for key in
                                ("metrics", "step", "steps", "cost", "final_train_loss")}
    if "selection" in final:
        records["final/selection"] = {key: value for key, value in final["selection"].items()}
    return records


def differences(before: Any, after: Any, where: str = "") -> Iterator[str]:
    """Every leaf that differs (timing keys skipped)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            if key in TIMING_KEYS:
                continue
            if key not in before or key not in after:
                yield f"{where}.{key}: only in {'after' if key in after else 'before'}"
            else:
                yield from differences(before[key], after[key], f"{where}.{key}")
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (mine, theirs) in enumerate(zip(before, after)):
            yield from differences(mine, theirs, f"{where}[{index}]")
    elif before != after:
        yield f"{where}: {before!r} != {after!r}"


def main(argv: list[str] | None = None) -> int:
    from bench_host import host_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--output", default="same_results.json")
    args = parser.parse_args(argv)
    before, after = compared_records(args.before), compared_records(args.after)
    found = []
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            found.append(f"{name}: only in {'after' if name in after else 'before'}")
            continue
        found += [f"{name}{line}" for line in differences(before[name], after[name])]
    for line in found:
        print(line)
    verdict = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after),
               "records_compared": len(before), "identical": not found,
               "differences": found, **host_section(None)}
    with open(args.output, "w") as handle:
        json.dump(verdict, handle, indent=2)
    print(f"{len(before)} records compared: "
          f"{'identical' if not found else f'{len(found)} differences'} -> {args.output}")
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main())
