"""Ranking study: how well does the supernet rank subnets trained from scratch?

K random subnets (seeded) are scored from the supernet with and without the head fine-tune,
and each is trained from scratch for --train-steps steps by the project's trainer, in this
process (capped tables as in the supernet). Pearson's r and Kendall's τ (scipy) between the
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
import time

from nasrec_torchrec.artifacts import read_json, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec rank-study`."""
    from nasrec_torchrec.search.settings import ScoringRun
    from nasrec_torchrec.settings import add_options

    add_options(parser, ScoringRun)
    parser.add_argument("--num-subnets", type=int, default=50,
                        help="random subnets compared (default 50)")
    parser.add_argument("--train-steps", type=int, default=1000,
                        help="from-scratch training steps per subnet (default 1000)")
    parser.add_argument("--train-batch-size", type=int,
                        help="from-scratch batch size (default: the supernet's)")
    parser.add_argument("--train-lr", type=float,
                        help="from-scratch Adagrad rate (default: the supernet's)")
    parser.add_argument("--train-clip-grad-norm", type=float, metavar="NORM",
                        help="from-scratch dense gradient clipping (default: the supernet's "
                        "--clip-grad-norm; 0: none)")
    parser.add_argument("--scratch-from", metavar="DIR",
                        help="reuse the from-scratch results of this earlier rank-study "
                        "output (same space and --seed) instead of training the subnets")


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the study; print the correlations."""
    from nasrec_torchrec.analysis.plots import plot_rank_correlation
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.search.rank_study import ScratchTraining, run_rank_study
    from nasrec_torchrec.search.run import load_scorer, set_threads
    from nasrec_torchrec.search.settings import ScoringRun
    from nasrec_torchrec.settings import from_args

    if args.num_subnets < 3:
        raise NASRecError("rank-study: --num-subnets must be at least 3 for a correlation")
    if args.train_steps < 1:
        raise NASRecError("rank-study: --train-steps must be at least 1")
    if args.train_batch_size is not None and args.train_batch_size < 1:
        raise NASRecError("rank-study: --train-batch-size must be at least 1, got "
                          f"{args.train_batch_size}")
    if args.train_lr is not None and not 0 < args.train_lr < float("inf"):
        raise NASRecError(f"rank-study: --train-lr must be a positive number, got "
                          f"{args.train_lr}")
    if args.train_clip_grad_norm is not None and args.train_clip_grad_norm < 0:
        raise NASRecError("rank-study: --train-clip-grad-norm must be >= 0, got "
                          f"{args.train_clip_grad_norm}")
    scoring = from_args(ScoringRun, args)
    scoring.validate("nasrec rank-study")
    set_threads(scoring.threads)
    started = time.perf_counter()
    loaded, scorer = load_scorer(scoring, "head")
    supernet_config = loaded.config
    scratch = ScratchTraining(
        steps=args.train_steps,
        batch_size=args.train_batch_size or int(supernet_config.get("batch_size", 256)),
        learning_rate=args.train_lr or float(supernet_config.get("learning_rate", 0.04)),
        embedding_cap=loaded.embedding_cap, layer_norm=loaded.supernet.layer_norm,
        clip_grad_norm=_scratch_clip(args.train_clip_grad_norm,
                                     supernet_config.get("clip_grad_norm")),
        seed=scoring.seed, eval_batch_size=scoring.eval_batch_size, threads=scoring.threads)
    progress = None
    if scoring.progress:
        from tqdm import tqdm

        progress = tqdm(total=args.num_subnets, unit="subnet", desc="rank study",
                        dynamic_ncols=True)
    try:
        study = run_rank_study(
            scorer, loaded.supernet.space, loaded.data, scoring.output,
            num_subnets=args.num_subnets, seed=scoring.seed, scratch=scratch,
            scratch_from=args.scratch_from,
            on_subnet=(lambda _: progress.update(1)) if progress is not None else None)
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - started
    records = study["subnets"]
    scratch_losses = [r["scratch_log_loss"] for r in records]
    for kind, name in (("finetuned", "rank_study.png"), ("inherited", "rank_study_inherited.png")):
        plot_rank_correlation(
            [r[f"supernet_{kind}_log_loss"] for r in records], scratch_losses,
            os.path.join(scoring.output, name), study[kind]["pearson"], study[kind]["kendall"],
            xlabel=f"supernet log loss ({'head fine-tuned' if kind == 'finetuned' else 'inherited'})",
            title=f"Ranking study, {loaded.supernet.space.name}, {len(records)} subnets")
    summary = {
        "config": {key: value for key, value in vars(args).items() if not key.startswith("_")},
        "scoring": scorer.config.to_dict(),
        "scratch_training": _scratch_settings(args.scratch_from) if args.scratch_from
        else scratch.to_dict(),
        "scratch_from": os.path.abspath(args.scratch_from) if args.scratch_from else None,
        "supernet": {"run_dir": loaded.run_dir, "checkpoint": loaded.checkpoint,
                     "step": loaded.step, "space": loaded.supernet.space.name,
                     "strategy": (supernet_config.get("model") or {}).get("strategy")},
        "finetuned": study["finetuned"], "inherited": study["inherited"],
        "num_subnets": len(records), "seconds_this_run": seconds,
        "subnets_file": "rank_study_subnets.jsonl",
    }
    write_json(os.path.join(scoring.output, "rank_study.json"), summary)
    finetuned, inherited = study["finetuned"], study["inherited"]
    print(f"{scoring.output}: {len(records)} subnets; supernet (head fine-tuned) vs scratch: "
          f"Pearson {finetuned['pearson']:.3f}, Kendall {finetuned['kendall']:.3f}; "
          f"inherited: Pearson {inherited['pearson']:.3f}, Kendall {inherited['kendall']:.3f}")
    return 0


def _scratch_settings(study: str) -> object:
    """The from-scratch settings recorded by the study whose results are reused."""
    path = os.path.join(study, "rank_study.json")
    if not os.path.exists(path):
        return None
    return read_json(path).get("scratch_training")


def _scratch_clip(flag: float | None, supernet_clip: float | None) -> float | None:
    """The from-scratch clipping norm: the flag (0: none), else the supernet's."""
    return supernet_clip if flag is None else flag or None
