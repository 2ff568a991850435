"""Train one model: a found architecture (NASRecNet from JSON) or a baseline.

Capped tables by default (--embedding-cap, 500000); --full-tables for the final model.
Embeddings are sharded and trained with fused Adagrad; dense weights with Adagrad (their
gradients' norm clipped at 5); a 1000-step warm-up, then a cosine learning-rate schedule. Writes metrics.jsonl, config.json, checkpoints/ and results.json
(validation log loss and AUC, samples/s).

Examples:
  nasrec train --data data/criteo --arch specs/arch/best.json --output runs/best
  nasrec train --data data/criteo --arch best.json --full-tables --output runs/final
  nasrec train --data data/frappe --model deepfm --model-option dropout=0.2 --output runs/d
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli train --data data/criteo \\
      --arch best.json --output runs/best --resume
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.stages.model import ModelRun, train_model
from nasrec_torchrec.train.options import add_run_arguments, run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec train`: one per field of `ModelRun` and its `TrainConfig`."""
    add_run_arguments(parser, ModelRun, early_stopping=True)


def run(args: argparse.Namespace) -> int:
    """Train the model; print the validation metrics."""
    model_run = run_from_args(ModelRun, args, early_stopping=True)
    results = train_model(model_run, "nasrec train")
    config = model_run.train
    if int(os.environ.get("RANK", "0")) == 0 and config.eval_split in results:
        metrics = results[config.eval_split]
        print(f"{config.output}: {results['steps']} steps, {config.eval_split} log loss "
              f"{metrics['log_loss']:.5f}, AUC {metrics['auc']:.5f}, "
              f"{results['samples_per_second'] or 0:,.0f} samples/s")
    return 0
