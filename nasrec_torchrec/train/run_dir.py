"""The run directory of a training run: its files, fresh starts, resumes and clean-ups.

`<output>/` holds `config.json` (the effective config, world size, plan), `metrics.jsonl`
(one line per logged step; a supernet's probe records), `results.json`, `checkpoints/step_*/`,
with early stopping `early_stopping.json`, and a supernet's `probes.jsonl` (names from
`nasrec_torchrec.artifacts`). Rank 0 writes the files; the collectives (`start_fresh`,
`keep_only_checkpoint`) are called by every rank.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from nasrec_torchrec.artifacts import (
    CHECKPOINT_DIR, EARLY_STOPPING_FILE, METRICS_FILE, PROBES_FILE, RESULTS_FILE, append_jsonl,
    iter_jsonl, make_directory, rewrite_jsonl, write_json)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import changed_settings
from nasrec_torchrec.train.checkpoint import latest_checkpoint, list_checkpoints, read_run_state
from nasrec_torchrec.train.distributed import barrier


class RunDirectory:
    """The files of one run in `output`; only the main rank (`is_main`) writes.

    Example::

        run_dir = RunDirectory("runs/best", context.is_main)
        run_dir.start_fresh(overwrite=False)  # refuses a directory with checkpoints
        run_dir.append_metrics({"step": 1, "loss": 0.69})
        run_dir.write_json(RESULTS_FILE, {"steps": 1})
    """

    def __init__(self, output: str, is_main: bool) -> None:
        self.output = output
        self.is_main = is_main
        self.checkpoint_dir: str = os.path.join(output, CHECKPOINT_DIR)

    def path(self, name: str) -> str:
        """The path of the run's file `name`."""
        return os.path.join(self.output, name)

    def create(self) -> None:
        """Make the directory (main rank)."""
        if self.is_main:
            make_directory(self.output)

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write the run's JSON file `name` atomically (main rank)."""
        if self.is_main:
            write_json(self.path(name), data)

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one line to `metrics.jsonl` (main rank)."""
        if self.is_main:
            append_jsonl(self.path(METRICS_FILE), [record])

    def truncate_metrics(self, step: int) -> None:
        """Keep the `metrics.jsonl` lines of the steps up to `step` (main rank): a resumed run
        logs the later steps again."""
        path = self.path(METRICS_FILE)
        if self.is_main and os.path.exists(path):
            rewrite_jsonl(path, [record for _, record in iter_jsonl(path)
                                 if record["step"] <= step])

    def start_fresh(self, overwrite: bool) -> None:
        """Begin a run that does not resume (a collective): with `overwrite`, delete an
        earlier run's checkpoints, results, metrics, early-stopping record and probes; refuse
        a directory that still holds checkpoints; empty the metrics."""
        if overwrite and self.is_main:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            for name in (RESULTS_FILE, METRICS_FILE, EARLY_STOPPING_FILE, PROBES_FILE):
                if os.path.exists(self.path(name)):
                    os.remove(self.path(name))
        barrier()
        if latest_checkpoint(self.checkpoint_dir) is not None:
            raise NASRecError(f"{self.output}: holds checkpoints of an earlier run; continue "
                              "it with --resume, replace it with --overwrite or choose "
                              "another --output")
        self.truncate_metrics(-1)

    def keep_only_checkpoint(self, checkpoint: str) -> None:
        """Delete every checkpoint but `checkpoint` (a collective)."""
        barrier()
        if self.is_main:
            for _, path in list_checkpoints(self.checkpoint_dir):
                if os.path.abspath(path) != os.path.abspath(checkpoint):
                    shutil.rmtree(path, ignore_errors=True)
        barrier()


def refuse_changed_settings(checkpoint: str, config: Any) -> None:
    """Raise `NASRecError` listing the settings of `config` (a `TrainConfig`) a resumed run
    must keep (`settings.Option.fixed_on_resume`: all but threads, progress, logging,
    checkpointing and where the run goes) that differ from those `checkpoint` was saved with."""
    recorded = read_run_state(checkpoint).get("run_state", {}).get("config")
    changes = changed_settings(config, recorded) if isinstance(recorded, dict) else []
    if changes:
        raise NASRecError(f"{checkpoint}: --resume with other settings than the run's: "
                          f"{'; '.join(changes)}; resume with the run's settings, or start "
                          "afresh with --overwrite or another --output")
