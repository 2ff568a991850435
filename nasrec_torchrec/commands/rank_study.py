"""Ranking study: how well does the supernet rank subnets trained from scratch?

K random subnets (seeded) are scored from the supernet with and without the head fine-tune,
and each is trained from scratch for --train-steps steps by the project's trainer, in this
process (capped tables as in the supernet); under torchrun the subnets are spread over the
ranks. Pearson's r and Kendall's τ (scipy) between the
supernet's and the from-scratch validation log losses go to rank_study.json, with a scatter
plot like the paper's Figure 3 (rank_study.png; rank_study_inherited.png without fine-tuning).
Subnets finished are kept in rank_study_subnets.jsonl: rerunning continues an interrupted study.
--scratch-from DIR reuses the from-scratch results of an earlier study of the same subnets
(same space, --seed and at least as many subnets) instead of training them again: supernets
trained with different sampling strategies are then ranked against the same runs.

Examples:
  nasrec rank-study --supernet runs/supernet --data data/criteo --output runs/rank
  nasrec rank-study --supernet runs/supernet --output runs/rank --num-subnets 20 \\
      --train-steps 300 --finetune-steps 200
  nasrec rank-study --supernet runs/supernet_any_op --output runs/rank_any_op \\
      --scratch-from runs/rank
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
    finetuned, inherited = summary["finetuned"], summary["inherited"]
    print(f"{study_run.output}: {summary['num_subnets']} subnets; supernet (head fine-tuned) vs "
          f"scratch: Pearson {finetuned['pearson']:.3f}, Kendall {finetuned['kendall']:.3f}; "
          f"inherited: Pearson {inherited['pearson']:.3f}, Kendall {inherited['kendall']:.3f}")
    return 0
