"""Top-k retraining: the best candidates of a search, each trained from scratch, best by val.

Each candidate gets its own run directory `OUTPUT/candidates/NN/` (NN = its rank in the
search, 00 = best) holding `architecture.json` and what the trainer writes (`config.json`,
`metrics.jsonl`, `checkpoints/`, `results.json`). All candidates train in this process, one
after the other, with the same `TrainConfig` (capped tables by default) and seed. A
candidate whose `results.json` exists is done and skipped; an interrupted one resumes from
its latest checkpoint. At the end `retrain.json` holds the table of all k and
`best_architecture.json` the one with the lowest validation log loss.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import time
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.training import (
    ARCHITECTURE_FILE, architecture_trainer, dense_and_embedding_params,
    load_candidates, read_json, run_config, top_candidates, write_architecture, write_json)
from nasrec_torchrec.train.distributed import broadcast_object

logger = logging.getLogger(__name__)

RETRAIN_FILE = "retrain.json"
BEST_FILE = "best_architecture.json"
CANDIDATES_DIR = "candidates"
SEARCH_CANDIDATES = "candidates.jsonl"


def candidate_dir(output: str, rank: int) -> str:
    """The run directory of the candidate ranked `rank` (0-based) by the search."""
    return os.path.join(output, CANDIDATES_DIR, f"{rank:02d}")


def search_data(search_dir: str) -> Optional[str]:
    """The dataset a search scored on (from its `search.json`), if recorded."""
    path = os.path.join(search_dir, "search.json")
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
                  metric: str = "log_loss", dropout: float = 0.0) -> dict[str, Any]:
    """Train the `top_k` best candidates of `search_dir` from scratch; pick the best by val.

    Args:
        search_dir: a `nasrec search` output (its `candidates.jsonl`).
        config: the `TrainConfig` of every candidate (`output` is the retrain directory;
            `eval_split` is the selection split, "val" by default).
        top_k: candidates retrained.
        layer_norm: LayerNorm in the operators.
        dropout: dropout on the blocks' dense outputs while training.
        metric: the selection metric of `config.eval_split` (lower is better).

    Returns:
        The content of `retrain.json`.
    """
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.artifacts import RESULTS_FILE

    if not config.eval_split:
        raise NASRecError("retrain: the selection needs an evaluation split (--eval-split)")
    output = config.output
    candidates_path = os.path.join(search_dir, SEARCH_CANDIDATES)
    chosen = top_candidates(load_candidates(candidates_path), top_k, candidates_path)
    if len(chosen) < top_k:
        logger.warning("%s: only %d distinct candidates (asked for the top %d)",
                       candidates_path, len(chosen), top_k)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    context = init_distributed(config.device, config.threads)
    try:
        for rank, (record, architecture) in enumerate(chosen):
            run_dir = candidate_dir(output, rank)
            results_path = os.path.join(run_dir, RESULTS_FILE)
            done = broadcast_object(os.path.exists(results_path))
            arch_path = os.path.join(run_dir, ARCHITECTURE_FILE)
            if done:
                logger.info("candidate %02d: done (%s), skipped", rank, results_path)
                results = read_json(results_path)
            else:
                if context.is_main:
                    write_architecture(arch_path, architecture)
                candidate = {key: record.get(key) for key in
                             ("index", "generation", "loss", "log_loss", "auc", "mflops",
                              "params")}
                run = run_config(config, run_dir, {
                    "kind": "architecture", "arch": os.path.abspath(arch_path), "model": None,
                    "model_options": [], "layer_norm": layer_norm, "dropout": dropout,
                    "stage": "retrain",
                    "search_candidate": candidate}, resume=True, overwrite=False)
                logger.info("candidate %02d of %d: search %s %.5f -> %s", rank, len(chosen),
                            metric, float(record["loss"]), run_dir)
                trainer = architecture_trainer(run, context, architecture, layer_norm,
                                               dropout=dropout)
                results = trainer.fit()
                del trainer
                gc.collect()
            metrics = results.get(config.eval_split) or {}
            cost = dense_and_embedding_params(
                architecture, _schema(config.data), config.embedding_dim, config.embedding_cap,
                layer_norm)
            rows.append({
                "rank": rank, "dir": os.path.relpath(run_dir, output),
                "search_index": record.get("index"), "search_generation": record.get("generation"),
                "search_loss": float(record["loss"]), "search_auc": record.get("auc"),
                metric: metrics.get(metric), "auc": metrics.get("auc"),
                "steps": results.get("steps"), "train_seconds": results.get("train_seconds"),
                "mflops": cost["mflops"], "dense_params": cost["dense_params"],
            })
    finally:
        teardown(context)

    def key(row: dict[str, Any]) -> float:
        value = row.get(metric)
        return float(value) if value is not None and math.isfinite(float(value)) else math.inf

    best = min(rows, key=lambda row: (key(row), row["rank"]))
    if not math.isfinite(key(best)):
        raise NASRecError(f"retrain: no candidate has a finite {config.eval_split} {metric}")
    best_architecture = chosen[best["rank"]][1]
    summary = {
        "search": os.path.abspath(search_dir), "data": config.data, "top_k": top_k,
        "retrained": len(rows), "selection": f"lowest {config.eval_split} {metric}",
        "eval_split": config.eval_split, "metric": metric, "best": best,
        "best_architecture_file": BEST_FILE,
        "search_vs_retrain": _rank_correlation([r["search_loss"] for r in rows],
                                               [key(r) for r in rows]),
        "candidates": rows, "layer_norm": layer_norm, "dropout": dropout,
        "config": config.to_dict(),
        "seconds_this_run": time.perf_counter() - started,
    }
    if context.is_main:
        write_architecture(os.path.join(output, BEST_FILE), best_architecture)
        write_json(os.path.join(output, RETRAIN_FILE), summary)
    return summary


def _schema(data: str) -> Any:
    from nasrec_torchrec.data.schema import Schema

    return Schema.load(data)
