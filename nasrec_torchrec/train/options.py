"""Command-line flags shared by `nasrec train-supernet` and `nasrec train`.

A flag left out keeps the value of `--config FILE.json` (a `TrainConfig` as JSON), which keeps
the `TrainConfig` default; the effective config is written to `<output>/config.json`.
"""

from __future__ import annotations

import argparse
from typing import Any

from nasrec_torchrec.train.config import (
    DEVICE_CHOICES, MONITORS, OPTIMIZERS, PIPELINES, TrainConfig)

# flag destination -> TrainConfig field
_FIELDS = {
    "data": "data", "output": "output", "batch_size": "batch_size",
    "eval_batch_size": "eval_batch_size", "epochs": "epochs", "max_steps": "max_steps",
    "lr": "learning_rate", "embedding_lr": "embedding_learning_rate", "eps": "eps",
    "lr_schedule": "lr_schedule", "lr_warmup": "lr_warmup_fraction",
    "embedding_dim": "embedding_dim", "embedding_cap": "embedding_cap",
    "embedding_init_std": "embedding_init_std", "seed": "seed",
    "device": "device", "threads": "threads", "pipeline": "pipeline",
    "checkpoint_every": "checkpoint_every", "keep_checkpoints": "keep_checkpoints",
    "log_every": "log_every", "eval_split": "eval_split", "sharding_type": "sharding_type",
    "optimizer": "optimizer", "embedding_l2": "embedding_l2",
    "embedding_weight_decay": "embedding_weight_decay", "clip_grad_norm": "clip_grad_norm",
    "stop_patience": "patience",
    "stop_monitor": "monitor", "lr_plateau_factor": "lr_plateau_factor",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of every training command (all default to the config's values)."""
    parser.add_argument("--data", metavar="DIR", help="prepared dataset (nasrec prepare/synth)")
    parser.add_argument("--output", metavar="DIR", help="run directory (metrics, checkpoints, "
                        "results)")
    parser.add_argument("--config", metavar="FILE.json", help="a TrainConfig as JSON; flags "
                        "override its fields")
    parser.add_argument("--batch-size", type=int, help="global batch size (default 512)")
    parser.add_argument("--eval-batch-size", type=int, help="global evaluation batch size")
    parser.add_argument("--epochs", type=int, help="passes over the training split (default 1)")
    parser.add_argument("--max-steps", type=int, help="stop after N steps")
    parser.add_argument("--optimizer", choices=OPTIMIZERS,
                        help="adagrad (default, the paper's: fused exact Adagrad for the "
                        "tables) or adam (torch Adam; tables data-parallel on CPU, where "
                        "FBGEMM has no Adam; fused ADAM on CUDA)")
    parser.add_argument("--lr", type=float, help="dense learning rate (default 0.04)")
    parser.add_argument("--embedding-lr", type=float,
                        help="learning rate of the tables (default 0.04)")
    parser.add_argument("--eps", type=float, help="optimizer epsilon (default 1e-8)")
    parser.add_argument("--embedding-l2", type=float, metavar="LAMBDA",
                        help="add LAMBDA * (batch mean of the sum of squared pooled "
                        "embeddings) to the training loss (default 0)")
    parser.add_argument("--embedding-weight-decay", type=float, metavar="LAMBDA",
                        help="adam only: L2 weight decay of the table rows in the optimizer "
                        "(FuxiCTR's embedding_regularizer; default 0)")
    parser.add_argument("--clip-grad-norm", type=float, metavar="NORM",
                        help="clip the global L2 norm of the dense gradients (after the "
                        "cross-rank reduction) to NORM before the dense optimizer step (the "
                        "official NASRec code: 5.0); the fused embedding tables are updated "
                        "inside the backward by FBGEMM and are not included (default: off)")
    parser.add_argument("--lr-schedule", choices=("cosine", "constant"),
                        help="learning-rate schedule over the run (default cosine)")
    parser.add_argument("--lr-warmup", type=float, metavar="FRACTION",
                        help="linear learning-rate warm-up over this fraction of the steps")
    parser.add_argument("--embedding-dim", type=int, help="embedding width (default 16)")
    tables = parser.add_mutually_exclusive_group()
    tables.add_argument("--embedding-cap", type=int, metavar="N",
                        help="at most N rows per table (default 500000)")
    tables.add_argument("--full-tables", action="store_true",
                        help="full-size tables (the final model)")
    parser.add_argument("--embedding-init-std", type=float, metavar="STD",
                        help="initialise the tables from N(0, STD^2) (FuxiCTR: 1e-4; "
                        "default: uniform in +-1/sqrt(rows))")
    parser.add_argument("--seed", type=int, help="seed of init, data order and paths (default 0)")
    parser.add_argument("--no-shuffle", action="store_true", help="train in file order")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="compute device (default auto)")
    parser.add_argument("--threads", type=int, help="intra-op threads per rank")
    parser.add_argument("--pipeline", choices=PIPELINES,
                        help="TorchRec train pipeline (default auto: sparse_dist on CUDA)")
    parser.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                        help="checkpoint every N steps (default: only at the end; 0: never)")
    parser.add_argument("--keep-checkpoints", type=int, help="checkpoints kept (default 3)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the output's latest checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run's checkpoints and metrics in --output")
    parser.add_argument("--log-every", type=int, help="steps per metrics.jsonl line (default 50)")
    parser.add_argument("--eval-split", help="split evaluated at the end (default val; '' skips)")
    parser.add_argument("--memory-budget-gb", type=float,
                        help="per-rank memory the planner may give the tables")
    parser.add_argument("--sharding-type", choices=("table_wise", "column_wise",
                                                    "table_column_wise", "row_wise"),
                        help="force one sharding type for every table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_network_arguments(parser: argparse.ArgumentParser, dropout: bool = True) -> None:
    """`--no-layer-norm` (and `--dropout`) of the commands that build NASRec networks."""
    parser.add_argument("--no-layer-norm", action="store_true",
                        help="no LayerNorm in the operators")
    if dropout:
        parser.add_argument("--dropout", type=float, default=0.0, metavar="P",
                            help="NASRecNet: dropout on every block's dense output while "
                            "training (default 0; baselines: --model-option dropout=P)")


def add_early_stopping_arguments(parser: argparse.ArgumentParser) -> None:
    """`--patience`, `--monitor`, `--lr-plateau-factor` of the trainer's early stopping
    (`nasrec train`, and `nasrec final --protocol bars`, whose patience defaults to 2)."""
    parser.add_argument("--patience", dest="stop_patience", type=int, metavar="EPOCHS",
                        help="evaluate the eval split after every epoch; stop after EPOCHS "
                        "epochs without improvement; results and checkpoint: the best epoch "
                        "(final: bars only, default 2)")
    parser.add_argument("--monitor", dest="stop_monitor", choices=MONITORS,
                        help="early-stopping metric (default auc)")
    parser.add_argument("--lr-plateau-factor", type=float, metavar="FACTOR",
                        help="with --patience: multiply the rates by FACTOR after an epoch "
                        "without improvement (default 1: never)")


def config_from_args(args: argparse.Namespace, extra: dict[str, Any]) -> TrainConfig:
    """The effective `TrainConfig`: `--config` file (or defaults) overridden by flags."""
    config = TrainConfig.load(args.config) if args.config else TrainConfig()
    for flag, name in _FIELDS.items():
        value = getattr(args, flag, None)
        if value is not None:
            setattr(config, name, value)
    if args.full_tables:
        config.embedding_cap = None
    if args.no_shuffle:
        config.shuffle = False
    if args.resume:
        config.resume = True
    if args.overwrite:
        config.overwrite = True
    if args.no_progress:
        config.progress_bar = False
    if args.memory_budget_gb is not None:
        config.memory_budget_bytes = int(args.memory_budget_gb * 2**30)
    config.extra = {**config.extra, **extra}
    return config
