"""Score a trained model directory on any prepared split (log loss, AUC).

The model directory is a run of `nasrec train`, `nasrec retrain` (a candidate) or
`nasrec final`: its config.json names the architecture (or baseline) and the tables; the
checkpoint is the one its results.json names (final keeps the best), else the latest. The data
may be another prepared dataset with the same vocabularies, e.g. a test set prepared later
with `nasrec prepare --schema-from`. Writes MODEL/evaluation_<split>.json.

Examples:
  nasrec evaluate --model runs/final --data data/criteo
  nasrec prepare --format criteo --input day_23.txt --split none --split-name test \\
      --schema-from data/criteo --output data/criteo_day23
  nasrec evaluate --model runs/final --data data/criteo_day23 --split test
"""

from __future__ import annotations

import argparse

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.evaluate import EvaluateRun, evaluate, evaluation_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec evaluate`: one per field of `EvaluateRun`."""
    add_options(parser, EvaluateRun)


def run(args: argparse.Namespace) -> int:
    """Evaluate; print the metrics."""
    evaluate_run = from_args(EvaluateRun, args)
    result = evaluate(evaluate_run, "nasrec evaluate")
    metrics = result["metrics"]
    print(f"{evaluate_run.model} on {result['split']}: log loss {metrics['log_loss']:.5f}, "
          f"AUC {metrics['auc']:.5f} over {metrics['rows']} rows -> "
          f"{evaluation_file(result['split'])}")
    return 0
