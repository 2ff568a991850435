"""Early stopping on a validation split, as a trainer step callback.

The one implementation behind `TrainConfig.patience` (`nasrec train --patience`; `nasrec
final --protocol bars` sets it): after every epoch, evaluate, record the metrics, optionally
cut the rates on a plateau, checkpoint, and stop after `patience` epochs without improvement
of `monitor`. The record goes to `early_stopping.json` (kept across a resume); at the end the
best epoch's checkpoint is loaded and kept, the others deleted.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

from nasrec_torchrec.artifacts import read_json, write_json
from nasrec_torchrec.train.checkpoint import load_checkpoint, step_directory

logger = logging.getLogger(__name__)


class EarlyStop(Exception):
    """Raised from the step callback to end the run after the patience ran out."""


def checkpoints_to_keep(patience: int, steps_per_epoch: int,
                        checkpoint_every: Optional[int]) -> int:
    """Checkpoints a run must keep so that the best epoch's is among them: it is at most
    `patience` epochs (and their own periodic checkpoints) back."""
    per_epoch = 1 + (steps_per_epoch // checkpoint_every if checkpoint_every else 0)
    return (patience + 2) * per_epoch


class EarlyStopping:
    """Per-epoch callback `callback(trainer)`: evaluate, checkpoint, stop on patience.

    The `Trainer` builds it from its config (`patience`, `monitor`, `lr_plateau_factor`,
    validated by `TrainConfig.validate`) and calls `restore` on a resume and `restore_best`
    at the end.

    Args:
        path: the JSON file of the epoch records (kept across a resume).
        val_loader: this rank's batches of the monitored split.
        patience: epochs without improvement before stopping.
        is_main: whether this rank writes the file.
        monitor: "auc" (higher is better) or "log_loss" (lower is better).
        lr_plateau_factor: multiply the schedule's base rates by this after an epoch without
            improvement (1.0: never); the checkpoint of that epoch holds the cut rates.

    Example::

        config.patience, config.monitor = 2, "auc"
        results = Trainer(config, context, body, train, val).fit()
        results["best_epoch"], results["early_stopping"]["epochs"]
    """

    def __init__(self, path: str, val_loader: Any, patience: int, is_main: bool,
                 monitor: str = "auc", lr_plateau_factor: float = 1.0) -> None:
        self.path = path
        self.val_loader = val_loader
        self.patience = patience
        self.is_main = is_main
        self.monitor = monitor
        self.lr_plateau_factor = lr_plateau_factor
        self.epochs: list[dict[str, Any]] = []
        self.stopped = False

    def restore(self, up_to_step: int) -> None:
        """Keep the records of the epochs up to `up_to_step` (the resumed checkpoint)."""
        if os.path.exists(self.path):
            state = read_json(self.path)
            self.epochs = [r for r in state.get("epochs", []) if r["step"] <= up_to_step]
            self.stopped = bool(state.get("stopped")) and bool(self.epochs) \
                and self.epochs[-1]["step"] == up_to_step

    def _key(self, record: dict[str, Any]) -> tuple[float, int]:
        value = record["val"][self.monitor]
        return (-value if self.monitor == "auc" else value, record["step"])

    def best(self) -> Optional[dict[str, Any]]:
        """The record with the best monitored value (earliest on ties)."""
        return min(self.epochs, key=self._key) if self.epochs else None

    def summary(self) -> dict[str, Any]:
        """JSON-able: monitor, patience, stopped, best epoch and every epoch's record."""
        best = self.best()
        return {"monitor": self.monitor, "patience": self.patience,
                "lr_plateau_factor": self.lr_plateau_factor, "stopped": self.stopped,
                "best_epoch": best["epoch"] if best else None, "epochs": self.epochs}

    def _save_state(self) -> None:
        if self.is_main:
            write_json(self.path, self.summary())

    def __call__(self, trainer: Any) -> None:
        if trainer.step % trainer.steps_per_epoch:
            return
        trainer.recalibrate_batch_norm()  # with bn_recalibration_batches; kept, checkpointed
        metrics = trainer.evaluate(self.val_loader)
        trainer.dmp.train()
        epoch = trainer.step // trainer.steps_per_epoch
        self.epochs.append({"epoch": epoch, "step": trainer.step, "val": metrics,
                            "lr": trainer.schedule.get_last_lr()[-1],
                            "checkpoint": os.path.relpath(
                                step_directory(trainer.checkpoint_dir, trainer.step),
                                trainer.config.output)})
        best = self.best()
        stale = epoch - best["epoch"]
        if stale and self.lr_plateau_factor < 1.0:
            schedule = trainer.schedule
            schedule.base_lrs = [lr * self.lr_plateau_factor for lr in schedule.base_lrs]
            schedule.apply()
        logger.info("epoch %d: val log loss %.5f, AUC %.5f (best epoch %d)", epoch,
                    metrics["log_loss"], metrics["auc"], best["epoch"])
        self.stopped = stale >= self.patience
        self._save_state()
        # after the record and any rate cut, so that a resume from it continues this run
        trainer.save()
        if self.stopped and trainer.step < trainer.total_steps:
            raise EarlyStop()

    def restore_best(self, trainer: Any) -> dict[str, Any]:
        """Load the best epoch's checkpoint into the trainer's model and optimizers, delete
        the other checkpoints (a collective); the best epoch's record."""
        best = self.best()
        assert best is not None
        checkpoint = os.path.join(trainer.config.output, best["checkpoint"])
        load_checkpoint(checkpoint, trainer.dmp, trainer.optimizer)
        trainer.run_dir.keep_only_checkpoint(checkpoint)
        logger.info("best epoch %d (%s %.5f): %s", best["epoch"], self.monitor,
                    best["val"][self.monitor], checkpoint)
        return best
