"""A final run trained with several seeds (`--repeats N`): one record per seed, and the
`repeats` section of the first seed's `results.json` holding them with, per reported split,
the mean and the sample standard deviation of AUC and log loss. Pure Python.

The section (N > 1)::

    {"seeds": [0, 1, 2],
     "runs": [{"seed": 0, "output": ".", "metrics": {"val": {"auc": ..., "log_loss": ...}},
               "best_epoch": 4, "train_seconds": ..., "total_seconds": ...}, ...],
     "mean": {"val": {"auc": ..., "log_loss": ...}},
     "std": {"val": {"auc": ..., "log_loss": ...}}}

Example::

    records = [seed_record(first, 0, "."), seed_record(second, 1, "repeat_1")]
    with_repeats(first, records)["repeats"]["mean"]["val"]["auc"]
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping, Optional, Sequence

REPEATS_KEY = "repeats"
REPEATS_SECONDS = "repeats_seconds"  # in `timing`: the repeats' runs (all but the first)
SUMMARISED = ("auc", "log_loss")


def seed_record(results: Mapping[str, Any], seed: int, output: str) -> dict[str, Any]:
    """One seed's entry of the section, from its final `results.json` content (`output`:
    its run directory, relative to the first seed's)."""
    timing = results.get("timing") or {}
    return {"seed": seed, "output": output,
            "metrics": {split: {name: values.get(name) for name in SUMMARISED}
                        for split, values in (results.get("metrics") or {}).items()},
            "best_epoch": (results.get("selection") or {}).get("best_epoch"),
            "train_seconds": timing.get("train_seconds"),
            "total_seconds": timing.get("total_seconds")}


def _summary(values: list[Optional[float]]) -> tuple[Optional[float], Optional[float]]:
    """(mean, sample standard deviation) of `values`; None when one is missing."""
    if any(value is None for value in values):
        return None, None
    numbers = [float(value) for value in values]  # type: ignore[arg-type]
    return statistics.fmean(numbers), statistics.stdev(numbers)


def repeats_section(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The `repeats` section of `records` (two or more, the first seed's first)."""
    mean: dict[str, dict[str, Optional[float]]] = {}
    std: dict[str, dict[str, Optional[float]]] = {}
    for split in records[0]["metrics"]:
        mean[split], std[split] = {}, {}
        for name in SUMMARISED:
            mean[split][name], std[split][name] = _summary(
                [record["metrics"].get(split, {}).get(name) for record in records])
    return {"seeds": [record["seed"] for record in records],
            "runs": [dict(record) for record in records], "mean": mean, "std": std}


def with_repeats(results: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
                 ) -> dict[str, Any]:
    """The first seed's `results` with the section of `records` and the repeats' time in
    `timing`; with a single record, without either (what a run of one seed writes)."""
    updated = {key: value for key, value in results.items() if key != REPEATS_KEY}
    timing = {key: value for key, value in (results.get("timing") or {}).items()
              if key != REPEATS_SECONDS}
    if len(records) > 1:
        timing[REPEATS_SECONDS] = sum(float(record["total_seconds"] or 0.0)
                                      for record in records[1:])
        updated[REPEATS_KEY] = repeats_section(records)
    if "timing" in results:
        updated["timing"] = timing
    return updated


def seeds_recorded(results: Mapping[str, Any]) -> int:
    """How many seeds a final `results.json` content stands for (1 without repeats)."""
    section = results.get(REPEATS_KEY)
    return len(section["seeds"]) if section else 1


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """One line per split of a run of several seeds, e.g. "val over seeds 0, 1, 2: AUC
    0.98515 ± 0.00067, log loss 0.14210 ± 0.00120" (none without repeats)."""
    section = results.get(REPEATS_KEY)
    if not section:
        return []
    seeds = ", ".join(str(seed) for seed in section["seeds"])

    def spread(split: str, name: str) -> str:
        mean, std = section["mean"][split][name], section["std"][split][name]
        return "-" if mean is None else f"{mean:.5f} ± {std:.5f}"

    return [f"{split} over seeds {seeds}: AUC {spread(split, 'auc')}, log loss "
            f"{spread(split, 'log_loss')}" for split in section["mean"]]
