"""Probe subnets: a fixed set of supernet paths scored after every epoch, so that a run shows
whether the supernet's shared weights have settled.

The supernet stage draws the probes once (`space.sample_probes`); `SupernetProbes` is a
trainer step callback. At the end of every epoch it evaluates each probe with the supernet's
inherited weights as they are (eval mode, no fine-tune) through the trainer's own evaluation:
a collective in which every rank scores its share of the rows and the metrics are computed
once over all of them. Rank 0 appends one record to `metrics.jsonl`:

    {"epoch": 1, "step": 18, "split": "val", "rows": 300,
     "probes": [{"probe": 0, "log_loss": ..., "auc": ...}, ...],
     "probe_mean_log_loss": ..., "probe_mean_auc": ...}

and writes the probes to `probes.jsonl` (`{"probe": i, "architecture": {...}}` a line).

A supernet with BatchNorm shares its running statistics between all paths, so they are no
probe's: each probe's are first re-estimated on a fixed set of training batches (the
`recalibration` loader; `nn.batch_norm.recalibrate_batch_norm` run on the supernet's path,
which IS the probe subnet), and the supernet's statistics are put back afterwards.

Evaluating draws no random number and changes no weight or statistic, so a run trains the
same with or without probes; a resumed run keeps the records up to its checkpoint (they carry the step,
see `RunDirectory.truncate_metrics`) and adds those of the later epochs.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Optional, Sequence

import torch

from nasrec_torchrec.artifacts import METRICS_FILE, PROBES_FILE, iter_jsonl, rewrite_jsonl
from nasrec_torchrec.nn.batch_norm import batch_norms, recalibrate_batch_norm

logger = logging.getLogger(__name__)


def probe_record(epoch: int, step: int, split: str,
                 scores: Sequence[dict[str, float]]) -> dict[str, Any]:
    """The `metrics.jsonl` record of one epoch's probe `scores` (`evaluate`'s dicts)."""
    losses = [score["log_loss"] for score in scores]
    aucs = [score["auc"] for score in scores]
    return {"epoch": epoch, "step": step, "split": split, "rows": scores[0]["rows"],
            "probes": [{"probe": index, "log_loss": loss, "auc": auc}
                       for index, (loss, auc) in enumerate(zip(losses, aucs))],
            "probe_mean_log_loss": sum(losses) / len(losses),
            "probe_mean_auc": sum(aucs) / len(aucs)}


def last_probe_record(metrics_path: str, before_step: int) -> Optional[dict[str, Any]]:
    """The latest probe record of `metrics_path` before `before_step` (None: none)."""
    if not os.path.exists(metrics_path):
        return None
    records = [record for _, record in iter_jsonl(metrics_path)
               if "probes" in record and record["step"] < before_step]
    return records[-1] if records else None


def make_recalibration_loader(config: Any, context: Any, batches: int) -> Any:
    """This rank's share (a `TrainConfig`'s data and batch size; `context` from
    `init_distributed`) of the first `batches` full training batches, unshuffled (the
    same rows at every call: BatchNorm recalibration of the supernet's probes)."""
    from nasrec_torchrec.data.loader import ParquetBatchLoader

    world = context.world_size
    return ParquetBatchLoader(
        config.data, "train", config.batch_size // world, embedding_cap=config.embedding_cap,
        shuffle=False, drop_last=True, rank=context.rank, world_size=world, prefetch=0,
        max_rows=batches * (config.batch_size // world) * world)


def _change(now: float, before: Optional[float]) -> str:
    if before is None or math.isnan(now) or math.isnan(before):
        return ""
    return f" ({now - before:+.5f})"


class SupernetProbes:
    """Trainer callback: after every epoch, score the probes on `loader` and record them.

    Args:
        architectures: the probe paths (`Architecture`s of the supernet's space).
        loader: this rank's batches of the rows the probes are scored on.
        split: the name of the split `loader` reads (recorded).
        recalibration: this rank's training batches each probe's BatchNorm statistics are
            re-estimated on first (None: the supernet's are used; needed with BatchNorm).

    Example::

        probes = SupernetProbes(sample_probes(space, 4, config.seed),
                                make_eval_loader(config, context, max_rows=20_000), "val")
        Trainer(config, context, supernet, train, val, path_sampler=sampler,
                eval_architecture=full, callbacks=[probes]).fit()
    """

    def __init__(self, architectures: Sequence[Any], loader: Any, split: str,
                 recalibration: Any = None) -> None:
        self.architectures = list(architectures)
        self.loader = loader
        self.split = split
        self.recalibration = recalibration
        self._previous: Optional[dict[str, Any]] = None
        self._started = False

    def _start(self, trainer: Any) -> None:
        """Write `probes.jsonl` and find the last record of a resumed run (main rank)."""
        self._started = True
        run_dir = trainer.run_dir
        if run_dir.is_main:
            rewrite_jsonl(run_dir.path(PROBES_FILE),
                          [{"probe": index, "architecture": architecture.to_dict()}
                           for index, architecture in enumerate(self.architectures)])
            self._previous = last_probe_record(run_dir.path(METRICS_FILE), trainer.step)

    def _score(self, trainer: Any, architecture: Any) -> dict[str, float]:
        """`trainer.evaluate` of the probe; with BatchNorm and a `recalibration` loader, on
        statistics re-estimated for it (the supernet's own restored afterwards)."""
        if self.recalibration is None or not batch_norms(trainer.body):
            return trainer.evaluate(self.loader, architecture)
        saved = [buffer.clone() for buffer in trainer.body.buffers()]
        was_training = trainer.dmp.training
        device = trainer.context.device
        try:
            trainer.body.set_architecture(architecture)
            recalibrate_batch_norm(trainer.dmp, self.recalibration,
                                   forward=lambda model, batch: model(batch.to(device)))
            return trainer.evaluate(self.loader, architecture)
        finally:
            with torch.no_grad():
                for buffer, value in zip(trainer.body.buffers(), saved):
                    buffer.copy_(value)
            trainer.dmp.train(was_training)

    def __call__(self, trainer: Any) -> None:
        if trainer.step % trainer.steps_per_epoch:
            return
        if not self._started:
            self._start(trainer)
        scores = [self._score(trainer, architecture) for architecture in self.architectures]
        record = probe_record(trainer.step // trainer.steps_per_epoch, trainer.step,
                              self.split, scores)
        trainer.run_dir.append_metrics(record)
        previous = self._previous or {}
        logger.info("epoch %d: %d probe subnets on %d %s rows: mean log loss %.5f%s, "
                    "AUC %.5f%s", record["epoch"], len(scores), record["rows"], self.split,
                    record["probe_mean_log_loss"],
                    _change(record["probe_mean_log_loss"], previous.get("probe_mean_log_loss")),
                    record["probe_mean_auc"],
                    _change(record["probe_mean_auc"], previous.get("probe_mean_auc")))
        self._previous = record
