"""`nasrec bench embeddings`: the sweep's tables, the memory estimate, a tiny run in this
process (files, plans, table bytes) and one on 2 gloo ranks under torchrun (each rank's table
bytes add up to the whole, as the plan puts them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.stages.bench.embeddings import (
    BENCH_FILE, BENCH_PLOT_FILE, BENCH_REPORT_FILE, EmbeddingBenchRun, criteo_shaped,
    estimated_rank_bytes, sweep_tables)

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--embedding-dim", "4", "--batch-size", "32", "--steps", "2", "--warmup-steps", "1",
        "--threads", "1", "--device", "cpu", "--no-progress"]


def test_criteo_shaped_tables_keep_criteos_proportions_and_two_rows_at_least():
    tables = criteo_shaped(33_762_577)  # Criteo's own total: its cardinalities
    assert tables[:3] == [1460, 583, 10131227] and len(tables) == 26
    small = criteo_shaped(1000)
    assert min(small) == 2 and max(small) == round(10131227 * 1000 / 33_762_577)


def test_sweep_splits_a_total_over_equal_tables_and_takes_rows_per_table():
    assert sweep_tables(EmbeddingBenchRun(total_rows=[10, 1e3], num_tables=3)) == [
        [4, 3, 3], [334, 333, 333]]
    assert sweep_tables(EmbeddingBenchRun(rows_per_table=[5, 7], num_tables=2)) == [
        [5, 5], [7, 7]]
    assert sweep_tables(EmbeddingBenchRun(rows_per_table=[5]))[0] == [5] * 26
    assert [sum(tables) for tables in sweep_tables(EmbeddingBenchRun())] == [
        sum(criteo_shaped(10**6)), sum(criteo_shaped(10**7))]


@pytest.mark.parametrize("run, message", [
    (EmbeddingBenchRun(total_rows=[1e6], rows_per_table=[10.0]), "not both"),
    (EmbeddingBenchRun(total_rows=[1e6, 2.5]), r"'total_rows' \(--total-rows\): 2.5 is not a "
     "whole number"),
    (EmbeddingBenchRun(total_rows=[5], num_tables=6), "5 rows cannot fill --num-tables 6"),
])
def test_sweep_refuses_what_cannot_be_built_naming_the_flag(run, message):
    with pytest.raises(NASRecError, match=message):
        sweep_tables(run)


def test_estimated_memory_per_rank_follows_the_sharding():
    tables, dim = [100, 300], 10  # 8 bytes per value: 8000 and 24000 bytes
    assert estimated_rank_bytes(tables, dim, "kernel", 4) == int(32000 * 1.3)
    assert estimated_rank_bytes(tables, dim, "row_wise", 4) == int(8000 * 1.3)
    assert estimated_rank_bytes(tables, dim, "table_wise", 4) == int(24000 * 1.3)
    assert estimated_rank_bytes(tables, dim, "data_parallel", 4) == int(48000 * 1.3)


def _check_plans(results, num_tables):
    """Every sharded configuration's plan lists every table, with its rows."""
    for record in results:
        if record["path"] != "kernel":
            assert {table["table"]: table["rows"] for table in record["plan"]} == {
                f"t_f{index}": rows for index, rows in enumerate(record["table_rows"])}
            assert len(record["table_rows"]) == num_tables


@pytest.mark.usefixtures("one_thread")
def test_a_tiny_run_in_one_process_writes_its_files_and_plans_every_table(tmp_path, capsys):
    from nasrec_torchrec.cli import main

    output = tmp_path / "bench"
    code = main(["bench", "embeddings", "--output", str(output), "--total-rows", "900", "1e6",
                 "--num-tables", "3", "--max-memory-gb", "0.01", "--sharding-types",
                 "table_wise", "row_wise", "data_parallel", "auto", *TINY])
    assert code == 0
    summary = json.loads((output / BENCH_FILE).read_text())
    assert summary["complete"] and summary["world_size"] == 1 and summary["backend"] == "gloo"
    assert summary["host"]["cpu_model"] and summary["matmul_peak"]["fp32"]["gflops"] > 0
    results = summary["results"]
    paths = [(r["total_rows"], r["sharding_type"] or r["path"]) for r in results]
    assert paths == [(size, path) for size in (900, 10**6)
                     for path in ("kernel", "table_wise", "row_wise", "data_parallel", "auto")]
    measured, skipped = results[:5], results[5:]
    assert all("GB per rank > --max-memory-gb 0.01" in r["skipped"] for r in skipped)
    for record in measured:
        assert record["samples_per_second"] > 0 and record["step_ms"] > 0
        (rank,) = record["per_rank"]
        assert rank["peak_rss_bytes"] > 0
        # weights + Adagrad state, all on this one rank (data_parallel: the dense optimizer
        # also keeps one step counter per table)
        extra = 3 * 4 if record["sharding_type"] == "data_parallel" else 0
        assert rank["table_bytes"] == 900 * 4 * 8 + extra == record["total_table_bytes"] + extra
    _check_plans(measured, 3)
    assert measured[2]["plan_source"] == "hand-written" and measured[1]["plan_source"] == "planner"
    report = (output / BENCH_REPORT_FILE).read_text()
    assert report.count("| 900 |") == 5 and report.count("| 1,000,000 |") == 5
    assert "900 rows, row_wise (hand-written): 3 tables on 1 rank" in report
    assert (output / BENCH_PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "| 900 | 0.00 | FBGEMM kernel | 1 |" in printed and str(output / BENCH_FILE) in printed


def test_two_gloo_ranks_hold_the_tables_between_them_as_the_plan_says(tmp_path):
    output = tmp_path / "bench2"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "nasrec_torchrec.cli", "bench", "embeddings", "--output", str(output),
         "--total-rows", "3001", "--num-tables", "5", "--no-kernel", "--sharding-types",
         "table_wise", "row_wise", *TINY],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("| 3,001 |") == 2  # rank 0 prints the table once
    results = json.loads((output / BENCH_FILE).read_text())["results"]
    assert [r["sharding_type"] for r in results] == ["table_wise", "row_wise"]
    _check_plans(results, 5)
    for record in results:
        per_rank = record["per_rank"]
        assert [rank["rank"] for rank in per_rank] == [0, 1]
        assert sum(rank["table_bytes"] for rank in per_rank) == record["total_table_bytes"] \
            == 3001 * 4 * 8
        held = [0, 0]  # what the plan puts on each rank: rows x columns x (weight + state)
        for table in record["plan"]:
            assert sum(shard["sizes"][0] for shard in table["shards"]) == table["rows"]
            for shard in table["shards"]:
                held[shard["rank"]] += shard["sizes"][0] * shard["sizes"][1] * 8
        assert [rank["table_bytes"] for rank in per_rank] == held
        assert all(value > 0 for value in held)
    table_wise, row_wise = results
    assert all(len(table["ranks"]) == 1 for table in table_wise["plan"])
    assert all(table["ranks"] == [0, 1] for table in row_wise["plan"])
