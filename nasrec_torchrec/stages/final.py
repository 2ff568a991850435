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

`repeats` N > 1 trains the model N times, with seeds `seed ... seed+N-1` and nothing else
changed: the first run where it always goes, the others in `repeat_1/ ... repeat_{N-1}/`
inside it (each a whole final run); the first run's `results.json` gains the `repeats`
section (each seed's metrics, their mean and sample standard deviation: `stages/repeats.py`)
and `timing.repeats_seconds`, its `metrics` staying the first seed's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from nasrec_torchrec.artifacts import (
    ARCHITECTURE_FILE, REPEAT_DIR, REPORT_FILE, RESULTS_FILE, make_directory, read_json,
    write_json)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.settings import changed_settings, check, option
from nasrec_torchrec.stages.combined import combined_split_view, has_split
from nasrec_torchrec.stages.repeats import seed_record, seeds_recorded, with_repeats
from nasrec_torchrec.stages.report import write_report
from nasrec_torchrec.stages.side_by_side import FinalJob, train_side_by_side
from nasrec_torchrec.stages.training import (
    model_cost, model_name, run_config, write_architecture)
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.model_trainer import model_trainer

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
        batch_norm: BatchNorm instead of LayerNorm on the dense operators.
        repeats: seeds the model is trained with (`train.seed` and the next ones).
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
    batch_norm: bool = option(False, "BatchNorm over the units of every dense operator instead "
                              "of LayerNorm (what the BARS recipe's tiny tables need)")
    repeats: int = option(1, "train the model N times, with seeds --seed ... --seed+N-1 (the "
                          "others in repeat_1/ ... inside --output); results.json then adds "
                          "each seed's metrics and their mean and standard deviation, which "
                          "the leaderboard compares", minimum=1, metavar="N")
    spread: bool = option(False, "under torchrun: train the seeds side by side, each on one "
                          "rank in a one-rank process (as a lone process trains it), instead "
                          "of one after the other sharded over every rank; for tables that "
                          "fit one rank")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(embedding_cap=None))


def final(run: FinalRun, source: str = "final") -> dict[str, Any]:
    """Train and score the final model of `run` (a finished run in `run.train.output` is
    reused with `resume`); the content of its `results.json`."""
    from nasrec_torchrec.train.ranks import job_group  # torch: imported when a run starts

    jobs = final_jobs(run, source)
    config, model = jobs[0].config, jobs[0].model
    with job_group(config.threads, config.device):  # one group for every seed's run
        if run.spread and train_side_by_side(jobs):
            config = dataclasses.replace(config, resume=True)  # every seed has finished
        results = finished_results(config, model, run.protocol, "--resume of a finished run",
                                   "start afresh with --overwrite or another --output") \
            if config.resume else None
        if results is not None:
            logger.info("%s: already finished (results.json), reused", config.output)
        else:
            results = run_final(config, model, run.protocol)
        return train_repeats(config, model, run.protocol, run.repeats, results)


def final_jobs(run: FinalRun, source: str = "final") -> list[FinalJob]:
    """The runs of `run` (checked; `source` names it in errors): one per seed, the first
    in `run.train.output`, the others in its `repeat_<i>/`."""
    from nasrec_torchrec.space import load_architecture

    check(run, source)
    config = run.train
    if not run.arch:
        raise NASRecError(f"{source}: field 'arch' (--arch): is required")
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --data and --output are required")
    model = ModelSpec.for_architecture(load_architecture(run.arch), run.layer_norm,
                                       run.dropout, os.path.abspath(run.arch), run.batch_norm)
    return seed_jobs(config, model, run.protocol, run.repeats)


def seed_jobs(config: Any, model: ModelSpec, protocol: str, repeats: int) -> list[FinalJob]:
    """One run per seed of the final run of `config`: the first in `config.output`, repeat i
    as `repeat_config(config, i)`."""
    return [FinalJob(repeat_config(config, index) if index else config, model, protocol)
            for index in range(repeats)]


def repeat_config(config: Any, index: int) -> Any:
    """The `TrainConfig` of repeat `index` (>= 1) of the final run of `config`: seed + index,
    in `repeat_<index>/` of its output."""
    return dataclasses.replace(config, seed=config.seed + index,
                               output=os.path.join(config.output,
                                                   REPEAT_DIR.format(index=index)))


def train_repeats(config: Any, model: ModelSpec, protocol: str, repeats: int,
                  results: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The first seed's final `results` (its run in `config.output`) with the `repeats`
    section of `repeats` seeds (none for 1); `results.json` (and a found architecture's
    report) rewritten when that changes it.

    Repeat i trains `repeat_config(config, i)` by `run_final`; with `config.resume` a
    finished repeat is reused (refused when finished with other settings) and an
    interrupted one resumes, as the first run. `name` leads the log lines (a baseline's)."""
    if repeats == 1 and seeds_recorded(results) == 1:
        return results
    records = [seed_record(results, config.seed, ".")]
    _log_seed(name, 1, repeats, records[0], "")
    for index in range(1, repeats):
        repeat = repeat_config(config, index)
        finished = finished_results(
            repeat, model, protocol, f"repeat {index} (seed {repeat.seed}) finished",
            "remove it or choose another --output") if repeat.resume else None
        reused = f" (reused: {repeat.output})" if finished is not None else ""
        if finished is None:
            finished = run_final(repeat, model, protocol)
        records.append(seed_record(finished, repeat.seed, REPEAT_DIR.format(index=index)))
        _log_seed(name, index + 1, repeats, records[-1], reused)
    updated = with_repeats(results, records)
    if updated != results:
        _rewrite_results(config.output, model, updated)
    return updated


def _log_seed(name: str, number: int, repeats: int, record: dict[str, Any], note: str
              ) -> None:
    scores = "; ".join(f"{split} AUC {_score(values['auc'])}, log loss "
                       f"{_score(values['log_loss'])}"
                       for split, values in record["metrics"].items())
    logger.info("%srepeat %d/%d (seed %d): %s%s", f"{name}: " if name else "", number,
                repeats, record["seed"], scores, note)


def _score(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.5f}"


def _rewrite_results(output: str, model: ModelSpec, results: dict[str, Any]) -> None:
    """Write `results` to the run's `results.json` (and `report.md` of a found architecture)
    on the main rank."""
    from nasrec_torchrec.train.distributed import barrier

    if int(os.environ.get("RANK", "0")) == 0:
        write_json(os.path.join(output, RESULTS_FILE), results)
        if model.kind == "architecture":
            write_report(output, results, model.found_architecture())
    barrier()


def finished_results(config: Any, model: ModelSpec, protocol: str, what: str, remedy: str
                     ) -> Optional[dict[str, Any]]:
    """The results of the finished final run of `model` in `config.output` (None when there
    is none); a run finished with other result-affecting settings is refused, naming them
    (`what` leads the message, `remedy` ends it)."""
    results = existing_results(config.output)
    if results is None:
        return None
    changes = changed_settings(final_plan(config, model, protocol).run,
                               results.get("config") or {})
    if changes:
        raise NASRecError(f"{os.path.join(config.output, RESULTS_FILE)}: {what} with other "
                          f"settings: {'; '.join(changes)}; {remedy}")
    return results


def final_done(output: str, repeats: Optional[int] = None) -> bool:
    """True when `output` holds a finished final run (its results.json, and the report of a
    found architecture) and, given `repeats`, the results of that many seeds."""
    path = os.path.join(output, RESULTS_FILE)
    if not os.path.exists(path):
        return False
    results = read_json(path)
    return bool(results.get("final")) and (
        not results.get("architecture_file") or os.path.exists(os.path.join(output, REPORT_FILE))
    ) and (repeats is None or seeds_recorded(results) == repeats)


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


def final_plan(config: Any, model: ModelSpec, protocol: str) -> FinalPlan:
    """The `FinalPlan` of a final run of `model` on `config.data` into `config.output` (the
    paper protocol trains on a train+val view in the output); faults of the data or the
    protocol are found here, before anything is written."""
    if protocol not in PROTOCOLS:
        raise NASRecError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'")
    data, output = config.data, config.output
    has_val, has_test = has_split(data, "val"), has_split(data, "test")
    bars = protocol == "bars"
    if bars and not has_val:
        raise NASRecError(f"{data}: the bars protocol needs a val split for early stopping")
    if not (has_test or has_val):
        raise NASRecError(f"{data}: neither a test nor a val split with rows: nothing to "
                          "report the final model on")
    patience = (BARS_PATIENCE if config.patience is None else config.patience) if bars else None
    train_splits = ["train", "val"] if protocol == "paper" and has_val else ["train"]
    report_splits = (["test"] if has_test else ["val"]) if protocol == "paper" \
        else (["val", "test"] if has_test else ["val"])
    train_data = os.path.join(output, TRAIN_VAL_VIEW) if len(train_splits) > 1 else data
    run = run_config(config, output, model, {
        "stage": "final", "protocol": protocol, "train_splits": train_splits},
        data=train_data, source_data=os.path.abspath(data),
        eval_split="val" if bars else "", patience=patience)
    return FinalPlan(run, train_splits, report_splits, patience)


def run_final(config: Any, model: ModelSpec, protocol: str = "paper",
              command: Optional[str] = None) -> dict[str, Any]:
    """Train the final model (a found architecture, or a baseline trained the same way) and
    score it; returns the content of `results.json`.

    Args:
        config: the `TrainConfig` (`data` = the prepared dataset, `output` = the run
            directory; `embedding_cap` None for full tables; `bars`: the early stopping's
            `patience`, `monitor`, `lr_plateau_factor`).
        model: what is trained (`ModelSpec`); a found architecture also gets
            `architecture.json` and `report.md`.
        protocol: "paper" or "bars" (see the module doc).
        command: the command line (recorded in the report).
    """
    from nasrec_torchrec.data.schema import Schema
    from nasrec_torchrec.train.checkpoint import latest_checkpoint
    from nasrec_torchrec.train.distributed import barrier, init_distributed, teardown

    started = time.perf_counter()
    data, output = config.data, config.output
    schema = Schema.load(data)
    plan = final_plan(config, model, protocol)
    bars, patience, run = protocol == "bars", plan.patience, plan.run
    train_splits, report_splits = plan.train_splits, plan.report_splits
    command = command or " ".join(["nasrec", *map(shlex.quote, sys.argv[1:])])

    context = init_distributed(config.device, config.threads)
    try:
        architecture = model.found_architecture() if model.kind == "architecture" else None
        if context.is_main:
            make_directory(output)
            if architecture is not None:
                write_architecture(os.path.join(output, ARCHITECTURE_FILE), architecture)
            if len(train_splits) > 1:
                combined_split_view(data, train_splits, os.path.join(output, TRAIN_VAL_VIEW))
        barrier()
        # bars: val is the trainer's eval split; its metrics are the best epoch's record
        loaders = {split: _eval_loader(data, split, run, context) for split in report_splits
                   if not (bars and split == "val")}
        trainer = model_trainer(run, context, eval_loader="default" if bars else None)
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
        cost = model_cost(model, schema, run.embedding_dim, run.embedding_cap)
        results: dict[str, Any] = {
            "final": True, "protocol": protocol, "output": os.path.abspath(output),
            "data": os.path.abspath(data), "train_splits": train_splits,
            "report_split": report_splits[-1], "metrics": metrics, **metrics,
            "model": model_name(model),
            "architecture_file": ARCHITECTURE_FILE if architecture is not None else None,
            "architecture_source": model.architecture_file,
            "checkpoint": os.path.relpath(checkpoint, output) if checkpoint else None,
            "step": step, "embedding_cap": run.embedding_cap, "layer_norm": model.layer_norm,
            "batch_norm": model.batch_norm, "dropout": model.dropout, "patience": patience,
            "cost": cost,
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
            if architecture is not None:
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
