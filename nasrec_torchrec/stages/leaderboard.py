"""The leaderboard: the found model beside the hand-made baselines trained the same way.

Rows hold each model's metrics on the splits its final run reported (val, and test where the
data has one), its parameters, MFLOPs per sample and training time; they are sorted by AUC on
the report split (test, else val), best first. The verdict says by how much the found model
beats, or trails, the best baseline on that split. Pure Python.

Example::

    board = leaderboard(final_results, {"dlrm": dlrm_results, "deepfm": deepfm_results})
    board["verdict"]["auc_margin"]  # found AUC - best baseline AUC (> 0: the found model wins)
"""

from __future__ import annotations

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


def _row(name: str, results: Mapping[str, Any]) -> dict[str, Any]:
    cost = results.get("cost") or {}
    metrics = results.get("metrics") or {}
    return {"model": name, "found": name == FOUND,
            "metrics": {split: {"auc": values.get("auc"), "log_loss": values.get("log_loss")}
                        for split, values in metrics.items()},
            "params": cost.get("params"), "dense_params": cost.get("dense_params"),
            "mflops": cost.get("mflops"),
            "train_seconds": (results.get("timing") or {}).get("train_seconds")}


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
    baselines."""
    found = next(row for row in rows if row["found"])
    others = [row for row in rows if not row["found"]]
    if not others:
        return None
    best = others[0]  # rows are sorted best first
    mine, theirs = found["metrics"].get(split, {}), best["metrics"].get(split, {})
    auc_margin = _difference(mine.get("auc"), theirs.get("auc"))
    log_loss_margin = _difference(theirs.get("log_loss"), mine.get("log_loss"))
    return {"split": split, "best_baseline": best["model"], "auc_margin": auc_margin,
            "log_loss_margin": log_loss_margin,
            "found_wins": auc_margin is not None and auc_margin > 0}


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
            + ("" if loss is None else f" and {'is lower' if loss > 0 else 'is higher'} in log "
               f"loss by {abs(loss):.5f}"))


def leaderboard_table(board: Mapping[str, Any]) -> list[str]:
    """Markdown lines: one row per model, best first."""
    splits = sorted({split for row in board["rows"] for split in row["metrics"]},
                    key=lambda split: (split != "val", split))
    header = ["model"] + [f"{split} {name}" for split in splits for name in ("AUC", "log loss")]
    header += ["params", "MFLOPs/sample", "train time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in board["rows"]:
        cells = [f"**{row['model']}**" if row["found"] else row["model"]]
        for split in splits:
            values = row["metrics"].get(split, {})
            cells += [_format(values.get("auc"), ".5f"), _format(values.get("log_loss"), ".5f")]
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
