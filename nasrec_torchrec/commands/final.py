"""Train the found architecture with full tables and report its test metrics.

Protocols: `paper` (default) trains on train+val (a view of both splits; nothing is copied)
for the configured epochs and reports the test split (val when there is none); `bars` trains
on train, evaluates val after every epoch, keeps the best epoch's checkpoint and stops after
--patience epochs without improvement, then reports val and test. Tables are full-size unless
--embedding-cap is given. Writes results.json (metrics, MFLOPs per sample, parameters,
timings, the checkpoint), architecture.json, checkpoints/ and report.md. With --resume an
interrupted run continues from its latest checkpoint; a finished one is not retrained.

Examples:
  nasrec final --arch runs/retrain/best_architecture.json --data data/criteo --output runs/final
  nasrec final --arch best.json --data data/frappe --output runs/final --protocol bars \\
      --epochs 30 --patience 2 --lr-schedule constant
  nasrec final --arch best.json --data data/frappe --output runs/final --protocol bars \\
      --optimizer adam --lr 1e-3 --embedding-lr 1e-3 --batch-size 4096 \\
      --embedding-weight-decay 0.05 --monitor auc --lr-plateau-factor 0.1 --epochs 30
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec final`."""
    from nasrec_torchrec.train.options import (add_early_stopping_arguments,
                                               add_network_arguments, add_train_arguments)

    parser.add_argument("--arch", required=True, metavar="FILE.json",
                        help="architecture JSON (e.g. retrain's best_architecture.json)")
    parser.add_argument("--protocol", choices=("paper", "bars"), default="paper",
                        help="paper: train+val for the configured epochs, report test; bars: "
                        "train with val early stopping (default paper)")
    add_network_arguments(parser)
    add_train_arguments(parser)
    add_early_stopping_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Train, score, report; print the metrics and where the report is."""
    import os

    from nasrec_torchrec.commands.train import load_architecture
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.pipeline.final import existing_results, run_final
    from nasrec_torchrec.pipeline.report import REPORT_FILE
    from nasrec_torchrec.train.options import config_from_args

    config = config_from_args(args, {})
    if args.embedding_cap is None:
        config.embedding_cap = None  # full tables unless a cap is asked for
    if not config.data or not config.output:
        raise NASRecError("final: --data and --output are required")
    architecture = load_architecture(args.arch)
    results = existing_results(config.output) if args.resume else None
    if results is not None:
        print(f"{config.output}: already finished (results.json); nothing to do")
    else:
        results = run_final(config, architecture, args.protocol,
                            layer_norm=not args.no_layer_norm, dropout=args.dropout,
                            architecture_source=os.path.abspath(args.arch))
    for split, metrics in results["metrics"].items():
        print(f"{config.output}: {split} log loss {metrics['log_loss']:.5f}, AUC "
              f"{metrics['auc']:.5f} over {metrics['rows']} rows")
    print(f"{config.output}: {results['cost']['mflops']:.3f} MFLOPs per sample, "
          f"{results['cost']['params']:,} parameters; report: "
          f"{os.path.join(config.output, REPORT_FILE)}")
    return 0
