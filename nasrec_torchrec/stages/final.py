"""The final model: the winner with full tables, trained by one of two protocols, then scored.

- `paper`: train on train+val (a combined view of the two splits, no data copied) for the
  configured epochs; report the test split (val when there is none, marked as trained on).
- `bars`: train on train with the trainer's early stopping on val (`train.early_stopping`,
  the config's `patience` (2 if unset), `monitor` (AUC by default, or log loss) and
  `lr_plateau_factor`): after every epoch evaluate val, checkpoint, and stop after `patience`
  epochs without improvement; the best epoch's checkpoint is the model (the others are
  deleted); report val and, when present, test.

Writes (beside the trainer's `config.json`, `metrics.jsonl`, `checkpoints/`):
`architecture.json`, `results.json` (metrics, FLOPs, params, timings, the checkpoint, the
command line) and `report.md`. A `bars` run keeps its per-epoch record in
`early_stopping.json`, so an interrupted run resumes with it.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from nasrec_torchrec.artifacts import (
    ARCHITECTURE_FILE, REPORT_FILE, RESULTS_FILE, make_directory, read_json, write_json)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.settings import changed_settings, check, option
from nasrec_torchrec.stages.combined import combined_split_view, has_split
from nasrec_torchrec.stages.report import write_report
from nasrec_torchrec.stages.training import (
    architecture_trainer, dense_and_embedding_params, run_config, write_architecture)
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.train.config import TrainConfig

logger = logging.getLogger(__name__)

PROTOCOLS = ("paper", "bars")
BARS_PATIENCE = 2  # `bars` epochs without val improvement when the config sets no patience
TRAIN_VAL_VIEW = "train_val_data"


@dataclass
class FinalRun:
    """The final model's run.

    Args:
        arch: the architecture JSON (e.g. retrain's best_architecture.json).
        protocol: "paper" or "bars" (see the module doc).
        layer_norm: LayerNorm in the operators.
        dropout: dropout on every block's dense output while training.
        train: the training settings (full tables unless `embedding_cap` is set; bars: the
            early stopping's `patience`, `monitor`, `lr_plateau_factor`).
    """

    arch: str = option("", "architecture JSON (e.g. retrain's best_architecture.json)",
                       metavar="FILE.json")
    protocol: str = option("paper", "paper: train+val for the configured epochs, report test; "
                           "bars: train with val early stopping", choices=PROTOCOLS)
    layer_norm: bool = option(True, "no LayerNorm in the operators")
    dropout: float = option(0.0, "dropout on every block's dense output while training",
                            minimum=0.0, below=1.0, metavar="P")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(embedding_cap=None))


def final(run: FinalRun, source: str = "final") -> dict[str, Any]:
    """Train and score the final model of `run` (a finished run in `run.train.output` is
    reused with `resume`); the content of its `results.json`."""
    from nasrec_torchrec.space import load_architecture

    check(run, source)
    config = run.train
    if not run.arch:
        raise NASRecError(f"{source}: field 'arch' (--arch): is required")
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --data and --output are required")
    architecture = load_architecture(run.arch)
    source_file = os.path.abspath(run.arch)
    results = existing_results(config.output) if config.resume else None
    if results is not None:
        plan = final_plan(config, architecture, run.protocol, run.layer_norm, run.dropout,
                          source_file)
        changes = changed_settings(plan.run, results.get("config") or {})
        if changes:
            raise NASRecError(f"{os.path.join(config.output, RESULTS_FILE)}: --resume of a "
                              f"finished run with other settings: {'; '.join(changes)}; "
                              "start afresh with --overwrite or another --output")
        logger.info("%s: already finished (results.json); nothing to do", config.output)
        return results
    return run_final(config, architecture, run.protocol, layer_norm=run.layer_norm,
                     dropout=run.dropout, architecture_source=source_file)


def final_done(output: str) -> bool:
    """True when `output` holds a finished final run (its results.json and report.md)."""
    path = os.path.join(output, RESULTS_FILE)
    return os.path.exists(os.path.join(output, REPORT_FILE)) and os.path.exists(path) \
        and bool(read_json(path).get("final"))


def _eval_loader(data: str, split: str, config: Any, context: Any) -> Any:
    from nasrec_torchrec.data.loader import ParquetBatchLoader

    world = context.world_size
    return ParquetBatchLoader(data, split, config.eval_batch_size // world,
                              embedding_cap=config.embedding_cap, shuffle=False,
                              drop_last=False, rank=context.rank,
                              world_size=world).require_rows("the final model's report")


@dataclass
class FinalPlan:
    """What a final run trains on and reports: its `TrainConfig` (`run`), the splits it
    trains on and reports, and the bars protocol's patience (None for paper)."""

    run: TrainConfig
    train_splits: list[str]
    report_splits: list[str]
    patience: Optional[int]


def final_plan(config: Any, architecture: Architecture, protocol: str, layer_norm: bool,
               dropout: float, architecture_source: Optional[str]) -> FinalPlan:
    """The `FinalPlan` of a final run of `architecture` on `config.data` into `config.output`
    (the paper protocol trains on a train+val view in the output)."""
    if protocol not in PROTOCOLS:
        raise NASRecError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    data, output = config.data, config.output
    has_val, has_test = has_split(data, "val"), has_split(data, "test")
    bars = protocol == "bars"
    if bars and not has_val:
        raise NASRecError(f"{data}: the bars protocol needs a val split for early stopping")
    patience = (BARS_PATIENCE if config.patience is None else config.patience) if bars else None
    train_splits = ["train", "val"] if protocol == "paper" and has_val else ["train"]
    report_splits = (["test"] if has_test else ["val"]) if protocol == "paper" \
        else (["val", "test"] if has_test else ["val"])
    if not (has_test or has_val):
        raise NASRecError(f"{data}: neither a test nor a val split with rows: nothing to "
                          "report the final model on")
    train_data = os.path.join(output, TRAIN_VAL_VIEW) if len(train_splits) > 1 else data
    model = ModelSpec.for_architecture(architecture, layer_norm, dropout, architecture_source)
    run = run_config(config, output, model, {
        "stage": "final", "protocol": protocol, "train_splits": train_splits},
        data=train_data, source_data=os.path.abspath(data),
        eval_split="val" if bars else "", patience=patience)
    return FinalPlan(run, train_splits, report_splits, patience)


def run_final(config: Any, architecture: Architecture, protocol: str = "paper",
              layer_norm: bool = True, dropout: float = 0.0,
              architecture_source: Optional[str] = None,
              command: Optional[str] = None) -> dict[str, Any]:
    """Train the final model and score it; returns the content of `results.json`.

    Args:
        config: the `TrainConfig` (`data` = the prepared dataset, `output` = the run
            directory; `embedding_cap` None for full tables; `bars`: the early stopping's
            `patience`, `monitor`, `lr_plateau_factor`).
        architecture: the model's architecture.
        protocol: "paper" or "bars" (see the module doc).
        layer_norm: LayerNorm in the operators.
        dropout: dropout on the blocks' dense outputs while training.
        architecture_source: where the architecture came from (recorded).
        command: the command line (recorded in the report).
    """
    from nasrec_torchrec.data.schema import Schema
    from nasrec_torchrec.train.checkpoint import latest_checkpoint
    from nasrec_torchrec.train.distributed import barrier, init_distributed, teardown

    started = time.perf_counter()
    data, output = config.data, config.output
    schema = Schema.load(data)
    plan = final_plan(config, architecture, protocol, layer_norm, dropout, architecture_source)
    bars, patience, run = protocol == "bars", plan.patience, plan.run
    train_splits, report_splits = plan.train_splits, plan.report_splits
    command = command or " ".join(["nasrec", *map(shlex.quote, sys.argv[1:])])

    context = init_distributed(config.device, config.threads)
    try:
        arch_path = os.path.join(output, ARCHITECTURE_FILE)
        if context.is_main:
            make_directory(output)
            write_architecture(arch_path, architecture)
            if len(train_splits) > 1:
                combined_split_view(data, train_splits, os.path.join(output, TRAIN_VAL_VIEW))
        barrier()
        # bars: val is the trainer's eval split; its metrics are the best epoch's record
        loaders = {split: _eval_loader(data, split, run, context) for split in report_splits
                   if not (bars and split == "val")}
        trainer = architecture_trainer(run, context, architecture,
                                       eval_loader="default" if bars else None)
        train_started = time.perf_counter()
        train_results = trainer.fit()
        train_seconds = time.perf_counter() - train_started

        evaluation_started = time.perf_counter()
        stopping = trainer.early_stopping
        best = stopping.best() if stopping is not None else None
        if bars:
            if best is None:
                raise NASRecError(f"{output}: no epoch finished (fewer steps than one epoch?); "
                                  "the bars protocol needs whole epochs")
            checkpoint, step = os.path.join(output, best["checkpoint"]), best["step"]
        else:
            checkpoint = latest_checkpoint(trainer.checkpoint_dir) or ""
            step = trainer.step
        metrics: dict[str, Any] = {
            split: best["val"] if bars and split == "val" else trainer.evaluate(loaders[split])
            for split in report_splits}
        evaluation_seconds = time.perf_counter() - evaluation_started
        cost = dense_and_embedding_params(architecture, schema, run.embedding_dim,
                                          run.embedding_cap, layer_norm)
        results: dict[str, Any] = {
            "final": True, "protocol": protocol, "output": os.path.abspath(output),
            "data": os.path.abspath(data), "train_splits": train_splits,
            "report_split": report_splits[-1], "metrics": metrics, **metrics,
            "architecture_file": ARCHITECTURE_FILE, "architecture_source": architecture_source,
            "checkpoint": os.path.relpath(checkpoint, output) if checkpoint else None,
            "step": step, "embedding_cap": run.embedding_cap, "layer_norm": layer_norm,
            "dropout": dropout, "patience": patience, "cost": cost,
            "steps": trainer.step, "samples_per_second": train_results["samples_per_second"],
            "final_train_loss": train_results["final_train_loss"],
            "timing": {"train_seconds": train_seconds, "evaluation_seconds": evaluation_seconds,
                       "total_seconds": time.perf_counter() - started},
            "command": command, "config": run.to_dict(),
        }
        if bars:
            results["selection"] = {"metric": f"val {stopping.monitor}", "patience": patience,
                                    "lr_plateau_factor": stopping.lr_plateau_factor,
                                    "best_epoch": best["epoch"], "stopped_early": stopping.stopped,
                                    "epochs": stopping.epochs}
        if context.is_main:
            write_json(os.path.join(output, RESULTS_FILE), results)
            write_report(output, results, architecture)
        barrier()
    finally:
        teardown(context)
    return results


def existing_results(output: str) -> Optional[dict[str, Any]]:
    """The results of a finished final run in `output`, else None (on every rank)."""
    from nasrec_torchrec.train.distributed import broadcast_object

    done = broadcast_object(final_done(output))
    return read_json(os.path.join(output, RESULTS_FILE)) if done else None
