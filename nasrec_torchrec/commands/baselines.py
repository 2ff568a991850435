"""Train the hand-made baselines exactly as the final model is trained, for a leaderboard.

Each model (DLRM, DeepFM and DCNv2 by default) is trained by the final stage's protocol and
recipe (the same flags as `nasrec final`: data, full tables, optimizer, early stopping...)
into OUTPUT/<model>/ (results.json, config.json, checkpoints/). A finished baseline is
reused. --repeats N trains each one with N seeds, as `nasrec final --repeats N` does.
`nasrec pipeline` runs this stage after the final model and puts the found model beside the
baselines in final/report.md and final/results.json (`leaderboard`).

Examples:
  nasrec baselines --data data/frappe --output runs/baselines --protocol bars \\
      --optimizer adam --lr 1e-3 --embedding-lr 1e-3 --batch-size 4096 --epochs 30
  nasrec baselines --models dlrm deepfm --data data/criteo --output runs/baselines
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.stages.baselines import BaselinesRun, train_baselines
from nasrec_torchrec.stages.repeats import summary_lines
from nasrec_torchrec.train.options import add_run_arguments, run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec baselines`: one per field of `BaselinesRun` (as `nasrec final`)."""
    add_run_arguments(parser, BaselinesRun, early_stopping=True)


def run(args: argparse.Namespace) -> int:
    """Train the baselines; print each one's metrics."""
    baselines_run = run_from_args(BaselinesRun, args, early_stopping=True)
    results = train_baselines(baselines_run, "nasrec baselines")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    for model, result in results.items():
        for split, metrics in result["metrics"].items():
            print(f"{model}: {split} log loss {metrics['log_loss']:.5f}, AUC "
                  f"{metrics['auc']:.5f}; {result['cost']['mflops']:.3f} MFLOPs, "
                  f"{result['cost']['params']:,} parameters")
        for line in summary_lines(result):
            print(f"{model}: {line}")
    return 0
