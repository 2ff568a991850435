"""Top-k retraining: the best candidates of a search, each trained from scratch, best by val.

Each candidate gets its own run directory `OUTPUT/candidates/NN/` (NN = its rank in the
search, 00 = best) holding `architecture.json` and what the trainer writes (`config.json`,
`metrics.jsonl`, `checkpoints/`, `results.json`). Every candidate trains on one rank with the
same `TrainConfig` (capped tables by default) and seed: in a lone process, all of them one
after the other in it; under torchrun, the candidates are spread over the ranks and each
rank trains its share one after the other in a fresh one-rank process
(`train.fresh_process`), so a candidate's results do not depend on the number of ranks. A
candidate whose `results.json` exists is done and skipped; an interrupted one resumes from
its latest checkpoint. At the end rank 0 writes `retrain.json`, the table of all k, and
`best_architecture.json`, the best by validation.

With `train.patience` every candidate trains by the final recipe's early stopping (the
trainer's `train.early_stopping`, as `nasrec final --protocol bars`): val after every epoch,
stop after `patience` epochs without improvement of `train.monitor`, the best epoch's
checkpoint restored; its metrics are the best epoch's. The selection metric (`select`):
"auto" is the monitor when a patience is set (AUC: highest wins), else the validation log
loss (lowest wins), as without early stopping.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import time
from typing import Any, Optional

from dataclasses import dataclass, field

from nasrec_torchrec.artifacts import (
    ARCHITECTURE_FILE, BEST_ARCHITECTURE_FILE, CANDIDATES_FILE, RESULTS_FILE, RETRAIN_FILE,
    SEARCH_SUMMARY_FILE, read_json, write_json)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.settings import changed_settings, check, option
from nasrec_torchrec.stages.training import (
    load_candidates, model_cost, run_config, top_candidates, write_architecture)
from nasrec_torchrec.train.config import TrainConfig

logger = logging.getLogger(__name__)

CANDIDATES_DIR = "candidates"
SELECTIONS = ("auto", "log_loss", "auc")
HIGHER_IS_BETTER = frozenset({"auc"})


@dataclass
class RetrainRun:
    """A top-k retraining run.

    Args:
        search: a `nasrec search` output directory (its candidates.jsonl).
        top_k: candidates retrained.
        layer_norm: LayerNorm in the operators.
        dropout: dropout on every block's dense output while training.
        batch_norm: BatchNorm instead of LayerNorm on the dense operators.
        select: the validation metric the best candidate is chosen by: "auto" (the early
            stopping's `train.monitor` when `train.patience` is set, else log_loss),
            "log_loss" (lowest) or "auc" (highest).
        train: the training settings of every candidate (`output`: the retrain directory;
            `data`: default the dataset the search scored on; `patience`, `monitor`,
            `lr_plateau_factor`: early stopping per candidate, `epochs` its cap).
    """

    search: str = option("", "a `nasrec search` output directory (its candidates.jsonl)",
                         metavar="DIR")
    top_k: int = option(15, "candidates retrained", minimum=1)
    layer_norm: bool = option(True, "no LayerNorm in the operators")
    dropout: float = option(0.0, "dropout on every block's dense output while training",
                            minimum=0.0, below=1.0, metavar="P")
    batch_norm: bool = option(False, "BatchNorm over the units of every dense operator instead "
                              "of LayerNorm (what the BARS recipe's tiny tables need)")
    select: str = option("auto", "pick the best candidate by this val metric: log_loss "
                         "(lowest), auc (highest), or auto (the --monitor of an early-stopped "
                         "retraining, with --patience; else log_loss)", choices=SELECTIONS)
    train: TrainConfig = field(default_factory=TrainConfig)


def retrain(run: RetrainRun, source: str = "retrain") -> dict[str, Any]:
    """Retrain the top-k of `run.search`; the content of `retrain.json`."""
    check(run, source)
    if not run.search:
        raise NASRecError(f"{source}: field 'search' (--search): is required")
    if not os.path.isfile(os.path.join(run.search, CANDIDATES_FILE)):
        raise NASRecError(f"{os.path.join(run.search, CANDIDATES_FILE)}: not found: is "
                          f"'{run.search}' a `nasrec search` output (--search)?")
    config = run.train
    config.data = config.data or search_data(run.search) or ""
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --output is required, and --data unless the search "
                          "recorded its dataset")
    return retrain_top_k(run.search, config, run.top_k, run.layer_norm,
                         selection_metric(run.select, config), dropout=run.dropout,
                         batch_norm=run.batch_norm)


def selection_metric(select: str, config: Any) -> str:
    """The val metric a retraining picks its best candidate by: `select`, or for "auto" the
    early stopping's monitor when `config.patience` is set, else "log_loss"."""
    if select != "auto":
        return select
    return config.monitor if config.patience is not None else "log_loss"


def candidate_dir(output: str, rank: int) -> str:
    """The run directory of the candidate ranked `rank` (0-based) by the search."""
    return os.path.join(output, CANDIDATES_DIR, f"{rank:02d}")


def search_data(search_dir: str) -> Optional[str]:
    """The dataset a search scored on (from its `search.json`), if recorded."""
    path = os.path.join(search_dir, SEARCH_SUMMARY_FILE)
    if not os.path.exists(path):
        return None
    return (read_json(path).get("supernet") or {}).get("data")


def _rank_correlation(search_losses: list[float], retrain_losses: list[float]
                      ) -> dict[str, Optional[float]]:
    pairs = [(a, b) for a, b in zip(search_losses, retrain_losses)
             if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3:
        return {"kendall_tau": None, "pearson": None}
    from scipy import stats

    xs, ys = zip(*pairs)
    tau = stats.kendalltau(xs, ys).statistic
    pearson = stats.pearsonr(xs, ys).statistic if len(set(xs)) > 1 and len(set(ys)) > 1 \
        else float("nan")
    return {"kendall_tau": float(tau), "pearson": float(pearson)}


def retrain_top_k(search_dir: str, config: Any, top_k: int = 15, layer_norm: bool = True,
                  metric: str = "log_loss", dropout: float = 0.0,
                  batch_norm: bool = False) -> dict[str, Any]:
    """Train the `top_k` best candidates of `search_dir` from scratch; pick the best by val.

    Args:
        search_dir: a `nasrec search` output (its `candidates.jsonl`).
        config: the `TrainConfig` of every candidate (`output` is the retrain directory;
            `eval_split` is the selection split, "val" by default).
        top_k: candidates retrained.
        layer_norm: LayerNorm in the operators.
        dropout: dropout on the blocks' dense outputs while training.
        batch_norm: BatchNorm instead of LayerNorm on the dense operators.
        metric: the selection metric of `config.eval_split`: "log_loss" (lowest wins) or
            "auc" (highest wins); with `config.patience`, of each candidate's best epoch.

    Returns:
        The content of `retrain.json`.
    """
    from nasrec_torchrec.train.distributed import broadcast_object, init_distributed, teardown
    from nasrec_torchrec.train.ranks import JOB_TIMEOUT_SECONDS

    if not config.eval_split:
        raise NASRecError("retrain: the selection needs an evaluation split (--eval-split)")
    if metric not in SELECTIONS[1:]:
        raise NASRecError(f"retrain: the selection metric must be one of "
                          f"{', '.join(SELECTIONS[1:])}, got {metric!r}")
    output = config.output
    candidates_path = os.path.join(search_dir, CANDIDATES_FILE)
    chosen = top_candidates(load_candidates(candidates_path), top_k, candidates_path)
    if len(chosen) < top_k:
        logger.warning("%s: only %d distinct candidates (asked for the top %d)",
                       candidates_path, len(chosen), top_k)
    started = time.perf_counter()
    runs = [_candidate_run(config, rank, record, architecture, layer_norm, dropout, batch_norm)
            for rank, (record, architecture) in enumerate(chosen)]
    context = init_distributed(config.device, config.threads, JOB_TIMEOUT_SECONDS)
    try:
        done = broadcast_object([os.path.exists(run.results_path) for run in runs])
        results: list[Any] = [None] * len(runs)
        for rank, run in enumerate(runs):
            if done[rank]:
                logger.info("candidate %02d: done (%s), skipped", rank, run.results_path)
                results[rank] = read_json(run.results_path)
                _refuse_changed(run.results_path, run.config, results[rank].get("config"))
        pending = [rank for rank in range(len(runs)) if not done[rank]]
        for rank, trained in zip(pending, _train(runs, pending, context)):
            results[rank] = trained
    finally:
        teardown(context)
    rows = [_row(run, results[rank], output, config, layer_norm)
            for rank, run in enumerate(runs)]

    best = min(rows, key=lambda row: (_selection_key(row, metric), row["rank"]))
    if not math.isfinite(_selection_key(best, metric)):
        raise NASRecError(f"retrain: no candidate has a finite {config.eval_split} {metric}")
    best_architecture = chosen[best["rank"]][1]
    direction = "highest" if metric in HIGHER_IS_BETTER else "lowest"
    summary = {
        "search": os.path.abspath(search_dir), "data": config.data, "top_k": top_k,
        "retrained": len(rows), "selection": f"{direction} {config.eval_split} {metric}",
        "eval_split": config.eval_split, "metric": metric, "direction": direction,
        "best": best, "best_architecture_file": BEST_ARCHITECTURE_FILE,
        "search_vs_retrain": _rank_correlation([r["search_loss"] for r in rows],
                                               [_finite(r["log_loss"]) for r in rows]),
        "candidates": rows, "layer_norm": layer_norm, "batch_norm": batch_norm,
        "dropout": dropout,
        "config": config.to_dict(),
        "seconds_this_run": time.perf_counter() - started,
    }
    if context.is_main:
        write_architecture(os.path.join(output, BEST_ARCHITECTURE_FILE), best_architecture)
        write_json(os.path.join(output, RETRAIN_FILE), summary)
    return summary


def _finite(value: Any) -> float:
    """`value` as a float; a missing or non-finite one as inf."""
    return float(value) if value is not None and math.isfinite(float(value)) else math.inf


def _selection_key(row: dict[str, Any], metric: str) -> float:
    """Lower is better: the row's `metric`, negated for AUC; inf when missing or not finite."""
    value = _finite(row.get(metric))
    return -value if metric in HIGHER_IS_BETTER and math.isfinite(value) else value


@dataclass
class CandidateRun:
    """One candidate to retrain: its rank in the search (0 = best), its search record and
    architecture, its run directory's files and its `TrainConfig`."""

    rank: int
    record: dict[str, Any]
    architecture: Any
    run_dir: str
    config: Any

    @property
    def results_path(self) -> str:
        """Its `results.json` (there once trained)."""
        return os.path.join(self.run_dir, RESULTS_FILE)

    @property
    def architecture_path(self) -> str:
        """Its `architecture.json`."""
        return os.path.join(self.run_dir, ARCHITECTURE_FILE)


def _candidate_run(config: Any, rank: int, record: dict[str, Any], architecture: Any,
                   layer_norm: bool, dropout: float, batch_norm: bool) -> CandidateRun:
    run_dir = candidate_dir(config.output, rank)
    candidate = {key: record.get(key) for key in
                 ("index", "generation", "loss", "log_loss", "auc", "mflops", "params")}
    model = ModelSpec.for_architecture(architecture, layer_norm, dropout, os.path.abspath(
        os.path.join(run_dir, ARCHITECTURE_FILE)), batch_norm)
    train_config = run_config(config, run_dir, model, {
        "stage": "retrain", "search_candidate": candidate}, resume=True, overwrite=False)
    return CandidateRun(rank, record, architecture, run_dir, train_config)


def _train(runs: list[CandidateRun], pending: list[int], context: Any
           ) -> list[dict[str, Any]]:
    """The results of the candidates ranked `pending`: trained one after the other here on
    a lone rank; on several ranks, spread over them, each rank training its share one after
    the other in a fresh one-rank process (`train.fresh_process`), so that a candidate
    trains as it does on one rank."""
    if context.world_size == 1:
        return [_train_here(runs[rank], len(runs), context) for rank in pending]
    from nasrec_torchrec.train.ranks import spread_over_ranks

    return spread_over_ranks(pending, lambda share: _train_share(
        [runs[rank] for rank in share], len(runs), context.rank))


def _announce(run: CandidateRun, count: int) -> None:
    logger.info("candidate %02d of %d: search log_loss %.5f -> %s", run.rank, count,
                float(run.record["loss"]), run.run_dir)


def _train_here(run: CandidateRun, count: int, context: Any) -> dict[str, Any]:
    from nasrec_torchrec.train.model_trainer import model_trainer

    if context.is_main:
        write_architecture(run.architecture_path, run.architecture)
    _announce(run, count)
    trainer = model_trainer(run.config, context)
    results = trainer.fit()
    del trainer
    gc.collect()
    return results


def _train_share(share: list[CandidateRun], count: int, rank: int) -> list[dict[str, Any]]:
    from nasrec_torchrec.train.fresh_process import train_in_fresh_process

    for run in share:
        write_architecture(run.architecture_path, run.architecture)
        _announce(run, count)
    logger.info("rank %d trains candidates %s", rank, [run.rank for run in share])
    return train_in_fresh_process([run.config for run in share])


def _row(run: CandidateRun, results: dict[str, Any], output: str, config: Any,
         layer_norm: bool) -> dict[str, Any]:
    """The line of `retrain.json`'s table of one retrained candidate (an early-stopped one's
    metrics are its best epoch's)."""
    if run.config.patience is not None and "best_epoch" not in results:
        raise NASRecError(f"{run.results_path}: no epoch finished (fewer steps than one "
                          "epoch?); --patience needs whole epochs")
    metrics = results.get(config.eval_split) or {}
    cost = model_cost(ModelSpec.for_architecture(run.architecture, layer_norm,
                                                 batch_norm=run.config.model.batch_norm),
                      _schema(config.data), config.embedding_dim, config.embedding_cap)
    record = run.record
    return {
        "rank": run.rank, "dir": os.path.relpath(run.run_dir, output),
        "search_index": record.get("index"), "search_generation": record.get("generation"),
        "search_loss": float(record["loss"]), "search_auc": record.get("auc"),
        "log_loss": metrics.get("log_loss"), "auc": metrics.get("auc"),
        "steps": results.get("steps"), "train_seconds": results.get("train_seconds"),
        "mflops": cost["mflops"], "dense_params": cost["dense_params"],
        **({"best_epoch": results["best_epoch"]} if "best_epoch" in results else {}),
    }


def _refuse_changed(results_path: str, config: Any, recorded: Any) -> None:
    """A finished candidate is reused only when trained with the settings asked for now."""
    changes = changed_settings(config, recorded) if isinstance(recorded, dict) else []
    if changes:
        raise NASRecError(f"{results_path}: a finished candidate trained with other settings: "
                          f"{'; '.join(changes)}; retrain with its settings, or start afresh "
                          "in another --output")


def _schema(data: str) -> Any:
    from nasrec_torchrec.data.schema import Schema

    return Schema.load(data)
