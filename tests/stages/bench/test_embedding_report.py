"""The embedding benchmark's markdown table, plan lines and plot series, from hand-made
records."""

from __future__ import annotations

from nasrec_torchrec.stages.bench.embedding_report import (
    GB, markdown_report, plan_lines, plot_series, results_table)


def _table(name, sharding_type, ranks, rows=10):
    return {"table": name, "rows": rows, "sharding_type": sharding_type,
            "compute_kernel": "fused", "ranks": ranks,
            "shards": [{"rank": rank, "offsets": [0, 0], "sizes": [rows, 4]} for rank in ranks]}


def _record(path, sharding_type, rate, peaks, tables, total_rows=1000, **extra):
    return {"path": path, "sharding_type": sharding_type, "ranks": len(peaks),
            "total_rows": total_rows, "total_table_bytes": 3 * GB, "samples_per_second": rate,
            "step_ms": 1000.0 / rate,
            "per_rank": [{"rank": rank, "peak_rss_bytes": peak, "table_bytes": table}
                         for rank, (peak, table) in enumerate(zip(peaks, tables))], **extra}


KERNEL = _record("kernel", None, 2000.0, [4 * GB], [3 * GB])
TABLE_WISE = _record("sharded", "table_wise", 500.0, [2 * GB, 3 * GB], [1 * GB, 2 * GB],
                     plan_source="planner",
                     plan=[_table("t_f0", "table_wise", [0]), _table("t_f1", "table_wise", [1]),
                           _table("t_f2", "table_wise", [0])])
SKIPPED = {"path": "sharded", "sharding_type": "row_wise", "ranks": 2, "total_rows": 10**9,
           "total_table_bytes": 120 * GB, "skipped": "needs ~78.0 GB per rank > --max-memory-gb 20"}


def test_plan_lines_group_the_tables_by_type_and_ranks_in_order():
    plan = [_table("t_f0", "table_wise", [1]), _table("t_f1", "row_wise", [0, 1]),
            _table("t_f2", "table_wise", [1]), _table("t_f3", "table_wise", [0])]
    assert plan_lines(plan) == ["table_wise on rank 1: t_f0, t_f2",
                                "row_wise on ranks 0, 1: t_f1",
                                "table_wise on rank 0: t_f3"]


def test_results_table_puts_the_kernel_beside_and_every_rank_in_its_row():
    lines = results_table([KERNEL, TABLE_WISE, SKIPPED]).splitlines()
    assert lines[2] == ("| 1,000 | 3.00 | FBGEMM kernel | 1 | - | 2,000 | 0.50 | 1.00 | 4.00 | "
                        "3.00 |")
    assert lines[3] == ("| 1,000 | 3.00 | table_wise | 2 | planner | 500 | 2.00 | 0.25 | "
                        "2.00 / 3.00 | 1.00 / 2.00 |")
    assert lines[4].startswith("| 1,000,000,000 | 120.00 | row_wise | 2 | - | skipped: needs "
                               "~78.0 GB per rank > --max-memory-gb 20 |")


def test_markdown_report_lists_every_table_of_every_plan():
    summary = {"config": {"embedding_dim": 4, "batch_size": 64, "pooling_factor": 1,
                          "steps": 2, "warmup_steps": 1},
               "results": [KERNEL, TABLE_WISE], "world_size": 2, "device": "cpu",
               "backend": "gloo", "threads_per_rank": 1, "table_shape": "3 equal tables",
               "host": {"cpu_model": "Test CPU", "logical_cpus": 2, "load_average_1m": 1.5},
               "matmul_peak": {"fp32": {"gflops": 70.0}}}
    text = markdown_report(summary)
    assert "Host: Test CPU, 2 logical CPUs, load 1.50 (1 min)" in text and "fp32 70" in text
    assert "1,000 rows, table_wise (planner): 3 tables on 2 ranks" in text
    for table, rank in (("t_f0", 0), ("t_f1", 1), ("t_f2", 0)):
        assert f"| {table} | 10 | table_wise | fused | {rank} | {rank}: 10x4 |" in text


def test_plot_series_takes_the_largest_rank_and_leaves_out_what_was_not_measured():
    series = plot_series([KERNEL, TABLE_WISE, SKIPPED])
    assert series == {"FBGEMM kernel (1 process)": [(1000, 2000.0, 4.0, 3.0)],
                      "table_wise (2 ranks)": [(1000, 500.0, 3.0, 2.0)]}
