"""Sizes of the preset search spaces and the share of single mutations that change nothing.

A mutation "changes nothing" when the child's `canonical()` form equals the parent's: it only
touched genes that no live operator reads (the official search scores such twins again).

Usage::

    python benchmarks/space_size.py --trials 4000 --output bench_out/space_size.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import Counter
from math import factorial
from pathlib import Path

from nasrec_torchrec.space import (
    SPACES,
    SearchSpace,
    apply_mutation,
    available_kinds,
    sample_architecture,
)

logger = logging.getLogger("space_size")


def no_op_mutations(space: SearchSpace, trials: int, seed: int) -> dict[str, object]:
    """Share of single mutations (parents: single-op any-conn samples) whose canonical form
    is unchanged, overall and per mutation kind."""
    rng = random.Random(seed)
    tried: Counter[str] = Counter()
    unchanged: Counter[str] = Counter()
    for _ in range(trials):
        parent = sample_architecture(space, rng)
        block = rng.randrange(1, space.num_blocks + 1)
        kind = rng.choice(available_kinds(parent, space, block))
        child = apply_mutation(parent, space, rng, kind, block)
        tried[kind] += 1
        unchanged[kind] += parent.canonical() == child.canonical()
    return {
        "trials": trials,
        "unchanged_fraction": sum(unchanged.values()) / trials,
        "unchanged_fraction_by_kind": {k: unchanged[k] / tried[k] for k in sorted(tried)},
    }


def report(space: SearchSpace, trials: int, seed: int) -> dict[str, object]:
    size, single = space.size(), space.size(single_operator=True)
    binary_ops = {"gating", "sum"} & set(space.dense_ops)
    # Without Gating or Sum, dense_left / dense_right are read by nothing: b² inert choices per block.
    inert = 1 if binary_ops else factorial(space.num_blocks) ** 2
    return {
        "space": space.to_dict(),
        "size": str(size),
        "size_float": float(size),
        "size_single_operator": str(single),
        "size_single_operator_float": float(single),
        "size_without_inert_left_right": float(size // inert),
        "no_op_mutations": no_op_mutations(space, trials, seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000, help="single mutations per space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("bench_out/space_size.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    results = {name: report(space, args.trials, args.seed) for name, space in SPACES.items()}
    for name, result in results.items():
        logger.info("%-15s size %.3g  single-op %.3g  unchanged after one mutation %.3f", name,
                    result["size_float"], result["size_single_operator_float"],
                    result["no_op_mutations"]["unchanged_fraction"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from bench_host import host_section

    args.output.write_text(json.dumps(
        {**host_section(1), "results": results, "seconds": time.perf_counter() - start},
        indent=2))
    logger.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
