"""The leaderboard: the found model beside the hand-made baselines trained the same way.

Rows hold each model's metrics on the splits its final run reported (val, and test where the
data has one), its parameters, MFLOPs per sample and training time; they are sorted by AUC on
the report split (test, else val), best first. The verdict says by how much the found model
beats, or trails, the best baseline on that split. A model trained with several seeds (its
results' `repeats` section: `stages/repeats.py`) enters with the means over its seeds, its
row also holding their standard deviations (`std`) and count (`seeds`); the verdict then
records the seeds and the AUC margin's standard error. Pure Python.

Example::

    board = leaderboard(final_results, {"dlrm": dlrm_results, "deepfm": deepfm_results})
    board["verdict"]["auc_margin"]  # found AUC - best baseline AUC (> 0: the found model wins)
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

FOUND = "found architecture"
_NOT_RECIPE = ("data", "output", "model", "notes", "source_data", "extra", "resume",
               "overwrite", "progress_bar", "threads", "device", "checkpoint_every",
               "keep_checkpoints", "log_every")
"""Config fields that are not part of a training recipe."""


def own_settings(results: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """What a baseline's run did differently from the found model's: its model options and
    the recipe's fields it set otherwise, as `KEY=VALUE`."""
    config, reference = results.get("config") or {}, found.get("config") or {}
    options = list(((config.get("model") or {}).get("baseline_options")) or [])
    return options + [f"{key}={value}" for key, value in sorted(config.items())
                      if key not in _NOT_RECIPE and key in reference
                      and reference[key] != value]


def _auc_and_log_loss(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {split: {"auc": values.get("auc"), "log_loss": values.get("log_loss")}
            for split, values in metrics.items()}


def _row(name: str, results: Mapping[str, Any]) -> dict[str, Any]:
    cost = results.get("cost") or {}
    repeats = results.get("repeats")
    metrics = repeats["mean"] if repeats else results.get("metrics") or {}
    row = {"model": name, "found": name == FOUND, "metrics": _auc_and_log_loss(metrics),
           "params": cost.get("params"), "dense_params": cost.get("dense_params"),
           "mflops": cost.get("mflops"),
           "train_seconds": (results.get("timing") or {}).get("train_seconds")}
    if repeats:
        row.update(std=_auc_and_log_loss(repeats["std"]), seeds=len(repeats["seeds"]))
    return row


def leaderboard(found: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]]
                ) -> dict[str, Any]:
    """The leaderboard of the found model's final `results.json` content and the baselines'
    (name -> their final `results.json` content)."""
    split = str(found.get("report_split") or "val")

    def auc(row: Mapping[str, Any]) -> float:
        value = row["metrics"].get(split, {}).get("auc")
        return float("-inf") if value is None else float(value)

    rows = sorted([_row(FOUND, found)] + [
        {**_row(name, results), "own_settings": own_settings(results, found)}
        for name, results in baselines.items()], key=lambda row: -auc(row))
    return {"split": split, "rows": rows, "verdict": verdict(rows, split)}


def verdict(rows: list[dict[str, Any]], split: str) -> Optional[dict[str, Any]]:
    """The found model against the best baseline (by AUC) on `split`; None without
    baselines. When either was trained with several seeds, also `seeds` and `baseline_seeds`
    (their counts) and `auc_margin_standard_error`, sqrt(sd_found²/n_found + sd_best²/n_best)
    from the sample standard deviations (None unless both have two seeds or more)."""
    found = next(row for row in rows if row["found"])
    others = [row for row in rows if not row["found"]]
    if not others:
        return None
    best = others[0]  # rows are sorted best first
    mine, theirs = found["metrics"].get(split, {}), best["metrics"].get(split, {})
    auc_margin = _difference(mine.get("auc"), theirs.get("auc"))
    log_loss_margin = _difference(theirs.get("log_loss"), mine.get("log_loss"))
    result = {"split": split, "best_baseline": best["model"], "auc_margin": auc_margin,
              "log_loss_margin": log_loss_margin,
              "found_wins": auc_margin is not None and auc_margin > 0}
    if "seeds" in found or "seeds" in best:
        result.update(seeds=found.get("seeds", 1), baseline_seeds=best.get("seeds", 1),
                      auc_margin_standard_error=_standard_error(found, best, split))
    return result


def _standard_error(found: Mapping[str, Any], best: Mapping[str, Any], split: str
                    ) -> Optional[float]:
    """The standard error of the difference of the two rows' mean AUCs on `split`."""
    variances = []
    for row in (found, best):
        std = (row.get("std") or {}).get(split, {}).get("auc")
        if std is None:  # one seed: its spread is unknown
            return None
        variances.append(float(std) ** 2 / row["seeds"])
    return math.sqrt(sum(variances))


def _difference(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else float(a) - float(b)


def verdict_line(board: Mapping[str, Any]) -> str:
    """One sentence: by how much the found model beats or trails the best baseline."""
    result = board.get("verdict")
    if not result or result["auc_margin"] is None:
        return "no baseline to compare with"
    word = "beats" if result["found_wins"] else "trails"
    loss = result["log_loss_margin"]
    return (f"the found model {word} the best baseline ({result['best_baseline']}) on "
            f"{result['split']} by {abs(result['auc_margin']):.5f} AUC"
            + ("" if "seeds" not in result else f" ({_seeds_note(result)})")
            + ("" if loss is None else f" and {'is lower' if loss > 0 else 'is higher'} in log "
               f"loss by {abs(loss):.5f}"))


def _seeds_note(result: Mapping[str, Any]) -> str:
    """E.g. "mean of 3 seeds; standard error 0.00030"."""
    def count(seeds: int) -> str:
        return f"mean of {seeds} seeds" if seeds > 1 else "one seed"

    found, baseline = result["seeds"], result["baseline_seeds"]
    seeds = count(found) if found == baseline else (
        f"the found model: {count(found)}, {result['best_baseline']}: {count(baseline)}")
    error = result["auc_margin_standard_error"]
    return seeds + ("; no standard error with one seed" if error is None
                    else f"; standard error {error:.5f}")


def leaderboard_table(board: Mapping[str, Any]) -> list[str]:
    """Markdown lines: one row per model, best first (a model of several seeds: "mean ± std"
    per metric, and "(n seeds)" after its name)."""
    splits = sorted({split for row in board["rows"] for split in row["metrics"]},
                    key=lambda split: (split != "val", split))
    header = ["model"] + [f"{split} {name}" for split in splits for name in ("AUC", "log loss")]
    header += ["params", "MFLOPs/sample", "train time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in board["rows"]:
        label = f"**{row['model']}**" if row["found"] else row["model"]
        cells = [label + (f" ({row['seeds']} seeds)" if "seeds" in row else "")]
        for split in splits:
            values, spread = row["metrics"].get(split, {}), (row.get("std") or {}).get(split)
            cells += [_format(values.get(metric), ".5f") + (
                "" if spread is None else f" ± {_format(spread.get(metric), '.5f')}")
                for metric in ("auc", "log_loss")]
        cells += [_format(row["params"], ",d"), _format(row["mflops"], ".3f"),
                  _format(row["train_seconds"], ".0f") + (" s" if row["train_seconds"] else "")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def own_settings_lines(board: Mapping[str, Any]) -> list[str]:
    """Markdown lines: each baseline's own options and settings (none: the final recipe)."""
    return [f"- {row['model']}: " + (", ".join(f"`{item}`" for item in row["own_settings"])
                                     or "the final recipe as it is")
            for row in board["rows"] if not row["found"]]


def _format(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)
