"""Train a weight-sharing supernet over a search space: a new path every step.

Every rank draws the same path (a generator seeded by --seed); during the first
--path-warmup fraction of the steps the full path is trained with a probability decaying
linearly from 1 to 0 (the paper's warm-up). Embeddings are sharded and trained with fused
Adagrad; dense weights with Adagrad (their gradients' norm clipped at 5); a 1000-step
learning-rate warm-up, then a cosine schedule. Writes metrics.jsonl,
config.json (with the whole search space), checkpoints/ and results.json (validation log
loss and AUC of the full path). After every epoch, --probe-subnets fixed architectures
(drawn once, seeded by --seed) are scored with the supernet's weights on the first
--probe-rows rows of --eval-split: one metrics.jsonl line per epoch (each probe's log loss and
AUC, their mean) and a log line, so that one sees whether the supernet has converged; the
architectures go to probes.jsonl.

Examples:
  nasrec train-supernet --data data/criteo --space nasrec-small --output runs/supernet
  nasrec train-supernet --data data/criteo --space specs/spaces/my-space.yaml --output runs/s
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli train-supernet --data data/criteo \\
      --space nasrec-full --output runs/supernet --checkpoint-every 1000
  nasrec train-supernet --data data/criteo --space nasrec-full --output runs/supernet --resume
  nasrec train-supernet --data data/criteo --space nasrec-small --output runs/s --epochs 3 \\
      --probe-subnets 8 --probe-rows 0
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.stages.supernet import SupernetRun, train_supernet
from nasrec_torchrec.train.options import add_run_arguments, run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec train-supernet`: one per field of `SupernetRun`."""
    add_run_arguments(parser, SupernetRun)


def run(args: argparse.Namespace) -> int:
    """Train the supernet; print the validation metrics."""
    supernet_run = run_from_args(SupernetRun, args)
    results = train_supernet(supernet_run, "nasrec train-supernet")
    config = supernet_run.train
    if int(os.environ.get("RANK", "0")) == 0 and config.eval_split in results:
        metrics = results[config.eval_split]
        print(f"{config.output}: supernet ({supernet_run.space}, {supernet_run.strategy}) "
              f"{results['steps']} steps, {config.eval_split} log loss "
              f"{metrics['log_loss']:.5f}, AUC {metrics['auc']:.5f} (full path), "
              f"{results['samples_per_second'] or 0:,.0f} samples/s")
    return 0
