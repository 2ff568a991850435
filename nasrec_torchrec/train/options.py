"""Command-line flags of the training commands, derived from their run configs' fields.

A run config is `TrainConfig` itself or a stage's dataclass holding one in its `train` field
(e.g. `SupernetRun`). Every field with an `option(...)` becomes a flag; a flag left out keeps
the value of `--config FILE.json` (a `TrainConfig` as JSON), which keeps the default. The
effective config is written to `<output>/config.json`.
"""

from __future__ import annotations

import argparse
from typing import Any

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.train.config import TrainConfig

ONE_MODEL_FIELDS = ("patience", "monitor", "lr_plateau_factor", "bn_recalibration_batches",
                    "compile")
"""Flags of the commands that train one model (early stopping, precise BN, a compiled body):
not a supernet's."""
_BY_HAND = ("embedding_cap",)  # with --full-tables, a mutually exclusive pair


def add_run_arguments(parser: argparse.ArgumentParser, run_cls: type = TrainConfig,
                      early_stopping: bool = False) -> None:
    """One flag per field of `run_cls` (and of its `TrainConfig`), plus `--config`,
    `--embedding-cap | --full-tables` and `--memory-budget-gb`; `ONE_MODEL_FIELDS`' flags
    only with `early_stopping` (a command that trains one model, not a supernet)."""
    parser.add_argument("--config", metavar="FILE.json", help="a TrainConfig as JSON; flags "
                        "override its fields")
    skip = _BY_HAND if early_stopping else ONE_MODEL_FIELDS + _BY_HAND
    add_options(parser, run_cls, skip=skip)
    tables = parser.add_mutually_exclusive_group()
    tables.add_argument("--embedding-cap", type=int, metavar="N", dest="embedding_cap",
                        help="at most N rows per table (default 500000)")
    tables.add_argument("--full-tables", action="store_true",
                        help="full-size tables (the final model)")
    parser.add_argument("--memory-budget-gb", type=float,
                        help="per-rank memory the planner may give the tables")


def run_from_args(run_cls: type, args: argparse.Namespace, early_stopping: bool = False,
                  base: Any = None) -> Any:
    """The effective run config: `base` (default: `--config` file or the defaults) overridden
    by the flags given."""
    if base is None:
        base = run_cls()
        if getattr(args, "config", None):
            train = TrainConfig.load(args.config)
            base = train if run_cls is TrainConfig else run_cls(train=train)
    run = from_args(run_cls, args, base, skip=() if early_stopping else ONE_MODEL_FIELDS)
    config = run if run_cls is TrainConfig else run.train
    if getattr(args, "full_tables", False):
        config.embedding_cap = None
    if getattr(args, "memory_budget_gb", None) is not None:
        config.memory_budget_bytes = int(args.memory_budget_gb * 2**30)
    return run
