"""Retrain the top-k candidates of a search from scratch and pick the best by validation.

Reads the search's candidates.jsonl, takes the k distinct architectures with the lowest
validation log loss, and trains each from scratch in this process with capped tables (the
training flags below; default cap 500000), one run directory per candidate
(OUTPUT/candidates/NN/, NN = rank in the search). A finished candidate (its results.json
exists) is skipped and an interrupted one resumes from its latest checkpoint, so running the
command again continues the work. Writes OUTPUT/retrain.json (the table of all k: search
loss, retrained val log loss and AUC, MFLOPs, params, seconds) and
OUTPUT/best_architecture.json (the best by validation log loss, for `nasrec final`).

Examples:
  nasrec retrain --search runs/search --data data/criteo --output runs/retrain
  nasrec retrain --search runs/search --output runs/retrain --top-k 5 --batch-size 256 \\
      --epochs 1 --checkpoint-every 1000
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec retrain`."""
    from nasrec_torchrec.train.options import add_network_arguments, add_train_arguments

    parser.add_argument("--search", required=True, metavar="DIR",
                        help="a `nasrec search` output directory (its candidates.jsonl)")
    parser.add_argument("--top-k", type=int, default=15,
                        help="candidates retrained (default 15)")
    add_network_arguments(parser)
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Retrain the top-k; print the table and the winner."""
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.pipeline.retrain import BEST_FILE, retrain_top_k, search_data
    from nasrec_torchrec.train.options import config_from_args

    config = config_from_args(args)
    config.data = config.data or search_data(args.search) or ""
    if not config.data or not config.output:
        raise NASRecError("retrain: --output is required, and --data unless the search "
                          "recorded its dataset")
    summary = retrain_top_k(args.search, config, top_k=args.top_k,
                            layer_norm=not args.no_layer_norm, dropout=args.dropout)
    metric, split = summary["metric"], summary["eval_split"]
    print(f"{'rank':>4} {'search loss':>12} {split + ' ' + metric:>16} {'AUC':>8} {'MFLOPs':>8}")
    for row in summary["candidates"]:
        value = row.get(metric)
        print(f"{row['rank']:>4} {row['search_loss']:>12.5f} "
              f"{value if value is None else format(value, '.5f'):>16} "
              f"{row['auc'] if row['auc'] is None else format(row['auc'], '.5f'):>8} "
              f"{row['mflops']:>8.3f}")
    best = summary["best"]
    print(f"{config.output}: best candidate {best['rank']:02d} ({split} {metric} "
          f"{best[metric]:.5f}, AUC {best['auc']:.5f}) -> {BEST_FILE}")
    return 0
