"""Train the found architecture with full tables and report its test metrics.

Protocols: `paper` (default) trains on train+val (a view of both splits; nothing is copied)
for the configured epochs and reports the test split (val when there is none); `bars` trains
on train, evaluates val after every epoch, keeps the best epoch's checkpoint and stops after
--patience epochs without improvement (default 2), then reports val and test. Tables are
full-size unless --embedding-cap is given. Writes results.json (metrics, MFLOPs per sample,
parameters, timings, the checkpoint), architecture.json, checkpoints/ and report.md. With
--resume an interrupted run continues from its latest checkpoint; a finished one is not
retrained. --repeats N trains it N times, with seeds --seed ... --seed+N-1 (the others in
OUTPUT/repeat_1/ ...), and adds each seed's metrics and their mean and standard deviation to
results.json (the leaderboard compares the means).

Examples:
  nasrec final --arch runs/retrain/best_architecture.json --data data/criteo --output runs/final
  nasrec final --arch best.json --data data/frappe --output runs/final --protocol bars \\
      --epochs 30 --patience 2 --lr-schedule constant --repeats 3
  nasrec final --arch best.json --data data/frappe --output runs/final --protocol bars \\
      --optimizer adam --lr 1e-3 --embedding-lr 1e-3 --batch-size 4096 \\
      --embedding-weight-decay 0.05 --monitor auc --lr-plateau-factor 0.1 --epochs 30
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.artifacts import REPORT_FILE
from nasrec_torchrec.stages.final import FinalRun, final
from nasrec_torchrec.stages.repeats import summary_lines
from nasrec_torchrec.train.options import add_run_arguments, run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec final`: one per field of `FinalRun` (early stopping included)."""
    add_run_arguments(parser, FinalRun, early_stopping=True)


def run(args: argparse.Namespace) -> int:
    """Train, score, report; print the metrics and where the report is."""
    final_run = run_from_args(FinalRun, args, early_stopping=True)
    results = final(final_run, "nasrec final")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    output = final_run.train.output
    for split, metrics in results["metrics"].items():
        print(f"{output}: {split} log loss {metrics['log_loss']:.5f}, AUC "
              f"{metrics['auc']:.5f} over {metrics['rows']} rows")
    for line in summary_lines(results):
        print(f"{output}: {line}")
    print(f"{output}: {results['cost']['mflops']:.3f} MFLOPs per sample, "
          f"{results['cost']['params']:,} parameters; report: "
          f"{os.path.join(output, REPORT_FILE)}")
    return 0
