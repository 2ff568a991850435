"""The final report's markdown: one row per block, metrics with notes, stage timings."""

from __future__ import annotations

import json
import os

from nasrec_torchrec.stages.report import render_report
from nasrec_torchrec.space import Architecture

ARCH = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "architectures",
                    "simple.json")


def test_report_lists_blocks_metrics_cost_stages_and_commands() -> None:
    with open(ARCH) as handle:
        architecture = Architecture.from_dict(json.load(handle))
    results = {
        "name": "toy", "protocol": "bars", "patience": 2, "train_splits": ["train"],
        "data": "/d", "architecture_file": "architecture.json", "checkpoint": "c", "step": 8,
        "metrics": {"val": {"log_loss": 0.25, "auc": 0.9, "rows": 10},
                    "test": {"log_loss": 0.3, "auc": 0.85, "rows": 12}},
        "cost": {"mflops": 1.5, "dense_params": 100, "embedding_params": 900, "params": 1000},
        "embedding_cap": None,
        "selection": {"best_epoch": 2, "stopped_early": True, "patience": 2,
                      "epochs": [{"epoch": e, "step": 4 * e, "val": {"log_loss": l, "auc": 0.9}}
                                 for e, l in ((1, 0.3), (2, 0.25), (3, 0.26), (4, 0.27))]},
        "timing": {"train_seconds": 75.0, "total_seconds": 80.0},
    }
    stages = {"supernet": {"seconds": 12.5, "command": "nasrec train-supernet --x"},
              "search": {"seconds": None, "skipped": True, "command": "nasrec search --y"}}
    text = render_report(results, architecture, stages)
    assert text.startswith("# Final model: toy")
    assert "| val | 0.25000 | 0.90000 | 10 | selection split |" in text
    assert "| test | 0.30000 | 0.85000 | 12 | held out |" in text
    assert "| 2 (best) | 8 |" in text and "Stopped after 2 epochs" in text
    table = text.split("## Architecture")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert [int(line.split("|")[1]) for line in rows] == \
        list(range(1, architecture.num_blocks + 1))
    assert "1,000" in text and "full tables" in text
    assert "| stage supernet | 12.5 s |" in text
    assert "| stage search | skipped (done earlier) |" in text
    assert "| final: train | 1 min 15 s |" in text
    assert "nasrec train-supernet --x" in text and "nasrec search --y" in text
