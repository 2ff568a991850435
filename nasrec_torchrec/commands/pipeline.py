"""Run the whole search in one command: prepare, train-supernet, search, retrain, final.

Stage parameters come from an experiment config (--config specs/experiments/NAME.yaml; the
paper's settings by default), overridden by --set SECTION.FIELD=VALUE and the flags below;
the effective config is written to OUTPUT/pipeline.json with each stage's command line,
status and time. Everything goes under one directory: OUTPUT/{data,supernet,search,retrain,
final}. A stage whose results exist is skipped and an interrupted one resumes, so running
the same command again continues the pipeline. Prints where the final report is.

--data is a prepared dataset; with --synth (or a config that prepares raw logs) it is where
the data is written (default OUTPUT/data).

Examples:
  nasrec pipeline --config specs/experiments/demo.yaml --output runs/demo
  nasrec pipeline --synth criteo --rows 200000 --output runs/synth --set retrain.top_k=5
  nasrec pipeline --config specs/experiments/frappe-nasrec-small.yaml --output runs/frappe
  nasrec pipeline --data data/criteo --config specs/experiments/criteo-nasrec-full.yaml \\
      --output runs/criteo --resume
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.pipeline.run import PipelineRun, pipeline
from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.leaderboard import verdict_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec pipeline`: one per field of `PipelineRun`."""
    add_options(parser, PipelineRun)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline; print the stage times and where the report is."""
    record = pipeline(from_args(PipelineRun, args), "nasrec pipeline")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports
    print(f"{'stage':<10} {'status':<8} {'seconds':>9}")
    for name, entry in record["stages"].items():
        seconds = entry.get("seconds")
        print(f"{name:<10} {entry.get('status', '-'):<8} "
              f"{'-' if seconds is None else format(seconds, '.1f'):>9}")
    final = record.get("final")
    if final:
        for split, metrics in (final.get("metrics") or {}).items():
            print(f"final {split}: log loss {metrics['log_loss']:.5f}, AUC {metrics['auc']:.5f}")
    if record.get("leaderboard"):
        print(f"leaderboard: {verdict_line(record['leaderboard'])}")
    if record.get("report"):
        print(f"report: {record['report']}")
    return 0
