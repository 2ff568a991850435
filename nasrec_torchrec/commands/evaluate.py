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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec evaluate`."""
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="a trained model directory (train / retrain candidate / final)")
    parser.add_argument("--data", metavar="DIR",
                        help="prepared dataset (default: the one the model trained on)")
    parser.add_argument("--split", help="split scored (default: test if present, else val)")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="a step_* checkpoint (default: the model's chosen or latest)")
    parser.add_argument("--batch-size", type=int, help="rows per evaluation batch")
    parser.add_argument("--threads", type=int, help="intra-op threads")


def run(args: argparse.Namespace) -> int:
    """Evaluate; print the metrics."""
    from nasrec_torchrec.pipeline.evaluate import evaluate_model, evaluation_file
    from nasrec_torchrec.train.distributed import set_threads

    set_threads(args.threads, 1)
    result = evaluate_model(args.model, args.data, args.split, args.batch_size, args.checkpoint)
    metrics = result["metrics"]
    print(f"{args.model} on {result['split']}: log loss {metrics['log_loss']:.5f}, "
          f"AUC {metrics['auc']:.5f} over {metrics['rows']} rows -> "
          f"{evaluation_file(result['split'])}")
    return 0
