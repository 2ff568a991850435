"""What the embedding benchmark writes and prints: its markdown table, the sharding plans,
and the series of its plot. Pure Python over the records of `embeddings.embedding_benchmark`
(one per configuration; see there)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

KERNEL_LABEL = "FBGEMM kernel"
GB = 2**30
_MAX_RANKS_LISTED = 4


def path_label(record: Mapping[str, Any]) -> str:
    """"FBGEMM kernel" or the sharding type of a configuration."""
    return KERNEL_LABEL if record["path"] == "kernel" else record["sharding_type"]


def _gb(value: Optional[float]) -> str:
    return "-" if value is None else f"{value / GB:.2f}"


def per_rank_gb(record: Mapping[str, Any], key: str) -> str:
    """A per-rank memory figure in GB: every rank's ("0.52 / 0.51"), or the range of many."""
    values = [rank[key] for rank in record.get("per_rank", ())]
    if not values:
        return "-"
    if len(values) <= _MAX_RANKS_LISTED:
        return " / ".join(_gb(value) for value in values)
    return f"{_gb(min(values))}-{_gb(max(values))}"


def plan_lines(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """The plan grouped by where tables went: "table_wise on rank 1: t_f2, t_f3" (in order)."""
    groups: dict[tuple[str, tuple[int, ...]], list[str]] = {}
    for table in plan:
        key = (table["sharding_type"], tuple(table["ranks"]))
        groups.setdefault(key, []).append(table["table"])
    lines = []
    for (sharding_type, ranks), tables in groups.items():
        where = f"rank {ranks[0]}" if len(ranks) == 1 else \
            f"ranks {', '.join(map(str, ranks))}"
        lines.append(f"{sharding_type} on {where}: {', '.join(tables)}")
    return lines


def _measured_cells(record: Mapping[str, Any], kernel_rate: Optional[float]) -> list[str]:
    if "samples_per_second" not in record:
        why = record.get("skipped") or record.get("error") or "not measured"
        return [f"{'skipped' if 'skipped' in record else 'error'}: {why}", "", "", "", ""]
    rate = record["samples_per_second"]
    ratio = f"{rate / kernel_rate:.2f}" if kernel_rate else "-"
    return [f"{rate:,.0f}", f"{record['step_ms']:.2f}", ratio,
            per_rank_gb(record, "peak_rss_bytes"), per_rank_gb(record, "table_bytes")]


def results_table(results: Sequence[Mapping[str, Any]]) -> str:
    """The markdown table of every configuration, the kernel's rate at the same size beside."""
    kernel_rates = {record["total_rows"]: record["samples_per_second"] for record in results
                    if record["path"] == "kernel" and "samples_per_second" in record}
    lines = ["| total rows | tables + Adagrad (GB) | path | ranks | plan | samples/s | "
             "ms/step | vs kernel | peak RSS per rank (GB) | tables per rank (GB) |",
             "|---:|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    for record in results:
        cells = [f"{record['total_rows']:,}", _gb(record["total_table_bytes"]),
                 path_label(record), str(record["ranks"]), record.get("plan_source") or "-",
                 *_measured_cells(record, kernel_rates.get(record["total_rows"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plan_details(record: Mapping[str, Any]) -> str:
    ranks = sorted({rank for table in record["plan"] for rank in table["ranks"]})
    lines = [f"<details><summary>{record['total_rows']:,} rows, {record['sharding_type']} "
             f"({record['plan_source']}): {len(record['plan'])} tables on {len(ranks)} "
             f"rank{'' if len(ranks) == 1 else 's'}</summary>", "",
             "| table | rows | sharding | kernel | ranks | shards (rank: rows x columns) |",
             "|---|---:|---|---|---|---|"]
    for table in record["plan"]:
        shards = ", ".join(f"{shard['rank']}: {shard['sizes'][0]}x{shard['sizes'][1]}"
                           for shard in table["shards"]) or "replicated"
        lines.append(f"| {table['table']} | {table['rows']:,} | {table['sharding_type']} | "
                     f"{table['compute_kernel']} | {', '.join(map(str, table['ranks']))} | "
                     f"{shards} |")
    return "\n".join(lines + ["", "</details>"])


def _host_line(summary: Mapping[str, Any]) -> str:
    host = summary.get("host") or {}
    peak = summary.get("matmul_peak") or {}
    peaks = ", ".join(f"{dtype} {value['gflops']:,.0f}" for dtype, value in peak.items())
    load = host.get("load_average_1m")
    return (f"Host: {host.get('cpu_model') or 'unknown CPU'}, {host.get('logical_cpus')} "
            f"logical CPUs, load {'-' if load is None else f'{load:.2f}'} (1 min), torch "
            f"{host.get('torch')}; "
            f"{summary['world_size']} rank(s) on {summary['device']} ({summary['backend']}), "
            f"{summary['threads_per_rank']} thread(s) per rank. Matrix-product peak "
            f"(GFLOP/s): {peaks or '-'}.")


def markdown_report(summary: Mapping[str, Any]) -> str:
    """The whole markdown file: host, settings, the results table and every sharding plan."""
    config = summary["config"]
    results = summary["results"]
    text = [
        "# Embedding benchmark", "", _host_line(summary), "",
        f"Tables: {summary['table_shape']}; dim {config['embedding_dim']}, global batch "
        f"{config['batch_size']}, pooling factor {config['pooling_factor']}, "
        f"{config['steps']} timed steps after {config['warmup_steps']}. A step: forward, "
        "backward, exact Adagrad update (fused; data_parallel: torch Adagrad after the "
        "all-reduce). The kernel holds every table in one process (rank 0). Memory per rank: "
        "peak resident set over the configuration, and the tables' weights + optimizer state "
        "the rank holds.", "", results_table(results)]
    plans = [record for record in results if record.get("plan")]
    if plans:
        text += ["", "## Sharding plans", ""]
        text += [_plan_details(record) + "\n" for record in plans]
    return "\n".join(text).rstrip() + "\n"


def plot_series(results: Sequence[Mapping[str, Any]]
                ) -> dict[str, list[tuple[int, float, float, float]]]:
    """Per path ("FBGEMM kernel (1 process)", "table_wise (2 ranks)"): (total rows,
    samples/s, peak RSS GB per rank, tables GB per rank) of each measured size; memory is the
    largest rank's."""
    series: dict[str, list[tuple[int, float, float, float]]] = {}
    for record in results:
        if "samples_per_second" not in record:
            continue
        ranks = record["ranks"]
        where = "1 process" if record["path"] == "kernel" else \
            f"{ranks} rank{'' if ranks == 1 else 's'}"
        label = f"{path_label(record)} ({where})"
        per_rank = record["per_rank"]
        series.setdefault(label, []).append((
            record["total_rows"], record["samples_per_second"],
            max(rank["peak_rss_bytes"] for rank in per_rank) / GB,
            max(rank["table_bytes"] for rank in per_rank) / GB))
    return series
