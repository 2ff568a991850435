"""Retrain the top-k candidates of a search from scratch and pick the best by validation.

Reads the search's candidates.jsonl, takes the k distinct architectures with the lowest
validation log loss, and trains each from scratch on one rank with capped tables (the
training flags below; default cap 500000), one run directory per candidate
(OUTPUT/candidates/NN/, NN = rank in the search); under torchrun the candidates are spread
over the ranks, each trained as on one rank. A finished candidate (its results.json
exists) is skipped and an interrupted one resumes from its latest checkpoint, so running the
command again continues the work. Writes OUTPUT/retrain.json (the table of all k: search
loss, retrained val log loss and AUC, MFLOPs, params, seconds; the selection metric and its
direction) and OUTPUT/best_architecture.json (the best by validation, for `nasrec final`).

The final recipe per candidate: --patience N evaluates val after every epoch, stops a
candidate after N epochs without improvement of --monitor (auc or log_loss), cuts the rates
by --lr-plateau-factor after an epoch without improvement, and restores the best epoch,
whose metrics are the candidate's (as `nasrec final --protocol bars`); --epochs caps each
candidate's epochs. --select picks the winner: auto (default) is the --monitor when
--patience is set (AUC: highest), else the lowest val log loss; log_loss or auc to choose.

Examples:
  nasrec retrain --search runs/search --data data/criteo --output runs/retrain
  nasrec retrain --search runs/search --output runs/retrain --top-k 5 --batch-size 256 \\
      --epochs 1 --checkpoint-every 1000
  nasrec retrain --search runs/search --output runs/retrain --top-k 5 --batch-norm \\
      --optimizer adam --lr 1e-3 --embedding-lr 1e-3 --batch-size 4096 --full-tables \\
      --lr-schedule constant --epochs 30 --patience 2 --monitor auc --lr-plateau-factor 0.1
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli retrain --search runs/search \\
      --output runs/retrain
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Optional

from nasrec_torchrec.artifacts import BEST_ARCHITECTURE_FILE
from nasrec_torchrec.stages.retrain import RetrainRun, retrain
from nasrec_torchrec.train.options import add_run_arguments, run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec retrain`: one per field of `RetrainRun` (early stopping
    included)."""
    add_run_arguments(parser, RetrainRun, early_stopping=True)


def _number(value: Optional[float], width: int) -> str:
    return f"{'-' if value is None else format(value, '.5f'):>{width}}"


def run(args: argparse.Namespace) -> int:
    """Retrain the top-k; print the table and the winner."""
    retrain_run = run_from_args(RetrainRun, args, early_stopping=True)
    summary = retrain(retrain_run, "nasrec retrain")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    split = summary["eval_split"]
    print(f"{'rank':>4} {'search loss':>12} {split + ' log loss':>14} {split + ' AUC':>9} "
          f"{'best epoch':>10} {'MFLOPs':>8}")
    for row in summary["candidates"]:
        epoch: Any = row.get("best_epoch", "-")
        print(f"{row['rank']:>4} {row['search_loss']:>12.5f} {_number(row['log_loss'], 14)} "
              f"{_number(row['auc'], 9)} {epoch:>10} {row['mflops']:>8.3f}")
    best = summary["best"]
    print(f"{retrain_run.train.output}: best candidate {best['rank']:02d} by "
          f"{summary['selection']} ({split} log loss {best['log_loss']:.5f}, AUC "
          f"{best['auc']:.5f}) -> {BEST_ARCHITECTURE_FILE}")
    return 0
