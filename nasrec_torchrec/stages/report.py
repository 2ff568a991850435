"""The markdown report of a final model: architecture per block, metrics, cost, timings."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from nasrec_torchrec.artifacts import REPORT_FILE, write_text
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.stages.leaderboard import (leaderboard_table, own_settings_lines,
                                                verdict_line)
from nasrec_torchrec.space.operators import DENSE_CONCAT, DENSE_PAIR



def _sources(sources: tuple[int, ...]) -> str:
    return ", ".join("raw" if s == 0 else f"b{s}" for s in sources) or "-"


def architecture_table(architecture: Architecture) -> list[str]:
    """Markdown table rows: one per block (dead blocks, which never reach the logit, marked)."""
    live = architecture.liveness()
    lines = ["| block | dense ops | dense dim | dense inputs | sparse ops | sparse rows | "
             "sparse inputs | project-concat | FM | live |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for number, block in enumerate(architecture.blocks, start=1):
        reads = block.inputs_read()
        dense_inputs = _sources(block.dense_sources) if DENSE_CONCAT in reads else ""
        if DENSE_PAIR in reads:
            pair = f"X1={_sources((block.dense_left,))}, X2={_sources((block.dense_right,))}"
            dense_inputs = f"{dense_inputs}; {pair}" if dense_inputs else pair
        lines.append(
            f"| {number} | {', '.join(block.dense_ops) or '-'} | {block.dense_dim} | "
            f"{dense_inputs or '-'} | {', '.join(block.sparse_ops) or '-'} | "
            f"{block.sparse_dim} | {_sources(block.sparse_sources)} | "
            f"{'yes' if block.project_concat else 'no'} | {'yes' if block.fm else 'no'} | "
            f"{'yes' if live.block_live(number) else 'no'} |")
    return lines


def _number(value: Any, digits: int = 5) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(float(value), 60)
    return f"{value:.1f} s" if value < 60 else f"{int(minutes)} min {seconds:.0f} s"


def seeds_table(results: Mapping[str, Any]) -> list[str]:
    """Markdown lines of a run trained with several seeds: one row per seed, then the mean ±
    sample standard deviation (none without the `repeats` section)."""
    repeats = results.get("repeats")
    if not repeats:
        return []
    splits = list(repeats["mean"])
    lines = ["", f"## Seeds ({len(repeats['seeds'])}; the metrics above are seed "
             f"{repeats['seeds'][0]}'s)", "",
             "| seed | " + " | ".join(f"{split} log loss | {split} AUC" for split in splits)
             + " | best epoch | train time | run |",
             "|---|" + "---|---|" * len(splits) + "---|---|---|"]
    for run in repeats["runs"]:
        scores = [_number(run["metrics"].get(split, {}).get(name)) for split in splits
                  for name in ("log_loss", "auc")]
        lines.append(f"| {run['seed']} | {' | '.join(scores)} | {_number(run['best_epoch'])} "
                     f"| {_seconds(run['train_seconds'])} | `{run['output']}` |")
    means = [f"{_number(repeats['mean'][split][name])} ± {_number(repeats['std'][split][name])}"
             for split in splits for name in ("log_loss", "auc")]
    return lines + [f"| mean ± std | {' | '.join(means)} | | | |"]


def render_report(results: Mapping[str, Any], architecture: Architecture,
                  stages: Optional[Mapping[str, Any]] = None) -> str:
    """The report's markdown text.

    Args:
        results: a final run's `results.json` content.
        architecture: the model's architecture.
        stages: optional pipeline stages (name -> {"seconds", "command", "skipped"}).
    """
    lines = [f"# Final model: {results.get('name') or os.path.basename(str(results.get('output', '')).rstrip('/')) or 'nasrec'}",
             ""]
    protocol = results.get("protocol")
    lines += [
        f"- protocol: **{protocol}** "
        + ("(trained on " + " + ".join(results.get("train_splits", [])) + " for the configured "
           "epochs)" if protocol == "paper" else
           f"(trained on train, early stopping on val, patience {results.get('patience')})"),
        f"- data: `{results.get('data')}`",
        f"- architecture: `{results.get('architecture_file')}`"
        + (f" (from `{results['architecture_source']}`)" if results.get("architecture_source")
           else ""),
        f"- checkpoint: `{results.get('checkpoint')}` (step {results.get('step')})",
        "",
        "## Metrics",
        "",
        "| split | log loss | AUC | rows | note |",
        "|---|---|---|---|---|",
    ]
    for split, metrics in (results.get("metrics") or {}).items():
        note = "trained on (not a held-out score)" if split in results.get("train_splits", []) \
            else ("selection split" if protocol == "bars" and split == "val" else "held out")
        lines.append(f"| {split} | {_number(metrics.get('log_loss'))} | "
                     f"{_number(metrics.get('auc'))} | {_number(metrics.get('rows'))} | {note} |")
    lines += seeds_table(results)
    cost = results.get("cost") or {}
    lines += [
        "",
        "## Cost",
        "",
        f"- FLOPs per sample: {_number(cost.get('mflops'), 4)} M ({cost.get('flops_convention', '')})",
        f"- dense parameters: {_number(cost.get('dense_params'))}",
        f"- embedding parameters: {_number(cost.get('embedding_params'))} "
        f"({'full tables' if results.get('embedding_cap') is None else 'tables capped at ' + _number(results.get('embedding_cap'))})",
        f"- total parameters: {_number(cost.get('params'))}",
        "",
        "## Architecture",
        "",
        f"{architecture.num_blocks} blocks; inputs `raw` = dense features and the stacked "
        "embeddings, `bN` = block N; the final FC reads the last block's outputs; "
        f"Project-Concat adds {architecture.project_concat_rows} row(s).",
        "",
        *architecture_table(architecture),
    ]
    board = results.get("leaderboard")
    if board:
        lines += ["", f"## Leaderboard (sorted by {board['split']} AUC)", "",
                  *leaderboard_table(board), "",
                  f"Verdict: {verdict_line(board)} (baselines trained by the final model's "
                  "recipe and protocol, on the same data and tables, with their own options "
                  "and settings below).", "", *own_settings_lines(board)]
    selection = results.get("selection")
    if selection:
        lines += ["", "## Early stopping (val)", "", "| epoch | step | val log loss | val AUC |",
                  "|---|---|---|---|"]
        for record in selection.get("epochs", []):
            mark = " (best)" if record.get("epoch") == selection.get("best_epoch") else ""
            lines.append(f"| {record['epoch']}{mark} | {record['step']} | "
                         f"{_number(record['val'].get('log_loss'))} | "
                         f"{_number(record['val'].get('auc'))} |")
        if selection.get("stopped_early"):
            lines.append("")
            lines.append(f"Stopped after {selection.get('patience')} epochs without improvement.")
    timing = results.get("timing") or {}
    lines += ["", "## Timings", "", "| what | time |", "|---|---|"]
    for name in ("train_seconds", "evaluation_seconds", "total_seconds", "repeats_seconds"):
        if name in timing:
            lines.append(f"| final: {name.replace('_seconds', '')} | {_seconds(timing[name])} |")
    if results.get("samples_per_second"):
        lines.append(f"| final: training throughput | {results['samples_per_second']:,.0f} samples/s |")
    for name, stage in (stages or {}).items():
        state = "skipped (done earlier)" if stage.get("skipped") else _seconds(stage.get("seconds"))
        lines.append(f"| stage {name} | {state} |")
    lines += ["", "## Command lines", ""]
    if stages:
        commands = [(name, stage.get("command")) for name, stage in stages.items()]
    else:
        commands = [("final (as invoked)", results.get("command"))]
    for name, command in commands:
        if command:
            lines += [f"{name}:", "", "```", command, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(output: str, results: Mapping[str, Any], architecture: Architecture,
                 stages: Optional[Mapping[str, Any]] = None) -> str:
    """Write `output/report.md`; returns its path."""
    return write_text(os.path.join(output, REPORT_FILE),
                      render_report(results, architecture, stages))
