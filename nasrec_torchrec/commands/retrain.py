"""Retrain the top-k candidates of a search from scratch and pick the best by validation.

Reads the search's candidates.jsonl, takes the k distinct architectures with the lowest
validation log loss, and trains each from scratch on one rank with capped tables (the
training flags below; default cap 500000), one run directory per candidate
(OUTPUT/candidates/NN/, NN = rank in the search); under torchrun the candidates are spread
over the ranks, each trained as on one rank. A finished candidate (its results.json
exists) is skipped and an interrupted one resumes from its latest checkpoint, so running the
command again continues the work. Writes OUTPUT/retrain.json (the table of all k: search
loss, retrained val log loss and AUC, MFLOPs, params, seconds) and
OUTPUT/best_architecture.json (the best by validation log loss, for `nasrec final`).

Examples:
  nasrec retrain --search runs/search --data data/criteo --output runs/retrain
  nasrec retrain --search runs/search --output runs/retrain --top-k 5 --batch-size 256 \\
      --epochs 1 --checkpoint-every 1000
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli retrain --search runs/search \\
      --output runs/retrain
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.artifacts import BEST_ARCHITECTURE_FILE
from nasrec_torchrec.stages.retrain import RetrainRun, retrain
from nasrec_torchrec.train.options import add_run_arguments, run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec retrain`: one per field of `RetrainRun`."""
    add_run_arguments(parser, RetrainRun)


def run(args: argparse.Namespace) -> int:
    """Retrain the top-k; print the table and the winner."""
    retrain_run = run_from_args(RetrainRun, args)
    summary = retrain(retrain_run, "nasrec retrain")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    metric, split = summary["metric"], summary["eval_split"]
    print(f"{'rank':>4} {'search loss':>12} {split + ' ' + metric:>16} {'AUC':>8} {'MFLOPs':>8}")
    for row in summary["candidates"]:
        value = row.get(metric)
        print(f"{row['rank']:>4} {row['search_loss']:>12.5f} "
              f"{value if value is None else format(value, '.5f'):>16} "
              f"{row['auc'] if row['auc'] is None else format(row['auc'], '.5f'):>8} "
              f"{row['mflops']:>8.3f}")
    best = summary["best"]
    print(f"{retrain_run.train.output}: best candidate {best['rank']:02d} ({split} {metric} "
          f"{best[metric]:.5f}, AUC {best['auc']:.5f}) -> {BEST_ARCHITECTURE_FILE}")
    return 0
