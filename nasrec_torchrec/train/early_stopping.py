"""Early stopping on a validation split, as a trainer step callback.

After every epoch: evaluate, record the metrics, optionally cut the rates on a plateau,
checkpoint, and stop after `patience` epochs without improvement. The record goes to a JSON
file (kept across a resume); the best epoch's checkpoint is the model. Used by `nasrec train
--patience` (`Trainer`) and by `nasrec final --protocol bars`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError

logger = logging.getLogger(__name__)

MONITOR_CHOICES = ("auc", "log_loss")


class EarlyStop(Exception):
    """Raised from the step callback to end the run after the patience ran out."""


def _read_json(path: str) -> dict[str, Any]:
    with open(path) as handle:
        return json.load(handle)


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(path + ".tmp", path)


class EarlyStopping:
    """Per-epoch callback `callback(trainer)`: evaluate, checkpoint, stop on patience.

    Args:
        path: the JSON file of the epoch records (kept across a resume).
        val_loader: this rank's batches of the monitored split.
        patience: epochs without improvement before stopping.
        is_main: whether this rank writes the file.
        monitor: "auc" (higher is better) or "log_loss" (lower is better).
        lr_plateau_factor: multiply the schedule's base rates by this after an epoch without
            improvement (1.0: never); the checkpoint of that epoch holds the cut rates.

    Example::

        stopping = EarlyStopping("run/early_stopping.json", val_loader, 2, True, "auc")
        trainer = Trainer(config, context, body, train, callbacks=[stopping])
        try:
            trainer.fit()
        except EarlyStop:
            pass
        best = stopping.best()  # {"epoch", "step", "val", "checkpoint"}
    """

    def __init__(self, path: str, val_loader: Any, patience: int, is_main: bool,
                 monitor: str = "log_loss", lr_plateau_factor: float = 1.0) -> None:
        if patience < 1:
            raise NASRecError(f"--patience must be at least 1, got {patience}")
        if monitor not in MONITOR_CHOICES:
            raise NASRecError(f"--monitor must be one of {MONITOR_CHOICES}, got '{monitor}'")
        if not 0.0 < lr_plateau_factor <= 1.0:
            raise NASRecError(f"--lr-plateau-factor must be in (0, 1], got {lr_plateau_factor}")
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
            state = _read_json(self.path)
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
            _write_json(self.path, self.summary())

    def __call__(self, trainer: Any) -> None:
        from nasrec_torchrec.train.checkpoint import step_directory

        if trainer.step % trainer.steps_per_epoch:
            return
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
