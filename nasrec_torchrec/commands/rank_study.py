"""Ranking study: how well does the supernet rank subnets trained from scratch?

K random subnets (seeded) are scored from the supernet with and without a fine-tune (--finetune
head, the default, or full: every dense weight of the subnet),
and each is trained from scratch by the project's trainer, in this process; under torchrun
the subnets are spread over the ranks. By default each trains for --train-steps steps of
Adagrad (--train-lr, --train-batch-size, --train-clip-grad-norm; capped tables, seed, and
otherwise the supernet's settings). --scratch-config FILE.json trains each with a whole recipe
instead (a TrainConfig JSON, as `nasrec train --config` reads: optimizer, rates, batch size,
epochs, --patience/--monitor/--lr-plateau-factor early stopping, table init, weight decays,
clipping, cap or full tables, seed; --train-steps is then ignored and the other --train-*
flags refused); the study sets the data, run directory, model, eval split and device (CPU).
--scratch-batch-norm and --scratch-dropout P change the subnets' model as `final
--batch-norm --dropout` do. An early-stopped subnet reports its best epoch.
--scratch-seeds N trains each subnet N times (the seed and the next ones): the supernet is
compared with the means, and the first two seeds with each other ("reproducibility"): when
one from-scratch training barely ranks another, no proxy can rank better.

Pearson's r and Kendall's τ (scipy) between the supernet's and the from-scratch validation
log losses, and between their validation AUCs, go to rank_study.json with the from-scratch
settings, and a scatter plot like the paper's Figure 3 (rank_study.png;
rank_study_inherited.png without fine-tuning). Subnets finished are kept in
rank_study_subnets.jsonl: rerunning with the same settings continues an interrupted study
(other from-scratch settings are refused, naming them). --scratch-from DIR reuses the
from-scratch results of an earlier study of the same subnets (same space, --seed and at least
as many subnets) instead of training them again: supernets trained with different sampling
strategies are then ranked against the same runs; given a --scratch-config (or
--scratch-batch-norm/--scratch-dropout), that study's runs must have been trained with it.

Examples:
  nasrec rank-study --supernet runs/supernet --data data/criteo --output runs/rank
  nasrec rank-study --supernet runs/supernet --output runs/rank --num-subnets 20 \\
      --train-steps 300 --finetune-steps 200
  nasrec rank-study --supernet runs/supernet_any_op --output runs/rank_any_op \\
      --scratch-from runs/rank
  nasrec rank-study --supernet runs/supernet --output runs/rank_bars --num-subnets 20 \\
      --scratch-config specs/recipes/bars.json --scratch-batch-norm
  nasrec rank-study --supernet runs/supernet --output runs/rank_bars_full --num-subnets 20 \\
      --finetune full --scratch-from runs/rank_bars
  nasrec rank-study --supernet runs/supernet --output runs/rank_bars2 --num-subnets 20 \\
      --scratch-config specs/recipes/bars.json --scratch-batch-norm --scratch-seeds 2
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.rank_study import RankStudyRun, rank_study


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec rank-study`: one per field of `RankStudyRun`."""
    add_options(parser, RankStudyRun)


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the study; print the correlations."""
    study_run = from_args(RankStudyRun, args)
    summary = rank_study(study_run, "nasrec rank-study")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(f"{study_run.output}: {summary['num_subnets']} subnets; supernet vs scratch:")
    for metric, suffix in (("log loss", ""), ("AUC", "_auc")):
        finetuned, inherited = summary[f"finetuned{suffix}"], summary[f"inherited{suffix}"]
        print(f"  val {metric}: {study_run.finetune} fine-tuned Pearson {finetuned['pearson']:.3f}, Kendall "
              f"{finetuned['kendall']:.3f}; inherited Pearson {inherited['pearson']:.3f}, "
              f"Kendall {inherited['kendall']:.3f}")
    if "reproducibility" in summary:
        print("  from scratch, the first seed vs the second (the ceiling of any proxy):")
        for metric, key in (("log loss", "reproducibility"), ("AUC", "reproducibility_auc")):
            print(f"  val {metric}: Pearson {summary[key]['pearson']:.3f}, Kendall "
                  f"{summary[key]['kendall']:.3f}")
    return 0
