"""The files of a search, in its output folder (names from `nasrec_torchrec.artifacts`):

- `candidates.jsonl`: one line per candidate, appended as soon as it is scored;
- `search_state.json`: the strategy's state, written after every generation (`SearchBase`);
- `search_run.json`: the settings the search runs with (`SearchRun`); a resume must keep
  those that change what it computes;
- `best_architecture.json`: the best candidate's architecture (for `nasrec train --arch`);
- `search.json`: the summary (settings, best, Pareto front, history, timing);
- `progress.png`, `loss_cdf.png`, `pareto.png`: plots.

Plain Python (no torch).

Example::

    outputs = SearchOutputs("runs/search")
    outputs.prepare(resume=False, overwrite=False)
    search = RandomSearch(space, objective, budget=100, state_path=outputs.state_path,
                          on_candidate=outputs.append_candidate)
    best = search.run()
    outputs.write_best(best.architecture)
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any, Mapping, Optional

from nasrec_torchrec.analysis.flops import FLOPS_CONVENTION
from nasrec_torchrec.analysis.plots import plot_loss_cdf, plot_pareto, plot_search_progress
from nasrec_torchrec.artifacts import (BEST_ARCHITECTURE_FILE, CANDIDATES_FILE,
                                       SEARCH_RUN_FILE, SEARCH_STATE_FILE, SEARCH_SUMMARY_FILE,
                                       append_jsonl, make_directory, read_json, write_json,
                                       write_text)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import changed_settings
from nasrec_torchrec.search.base import SearchBase
from nasrec_torchrec.search.pareto import pareto_front
from nasrec_torchrec.space.architecture import Architecture

logger = logging.getLogger(__name__)

PLOT_FILES = {"progress": "progress.png", "loss_cdf": "loss_cdf.png", "pareto": "pareto.png"}


class SearchOutputs:
    """The output folder of one search.

    Args:
        directory: the folder (created by `prepare`).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def path(self, name: str) -> str:
        """`name` inside the folder."""
        return os.path.join(self.directory, name)

    @property
    def state_path(self) -> str:
        """The strategy's state file."""
        return self.path(SEARCH_STATE_FILE)

    @property
    def candidates_path(self) -> str:
        """`candidates.jsonl`."""
        return self.path(CANDIDATES_FILE)

    def check(self, run: Any) -> None:
        """Refuse, before anything is written, an earlier search in the folder that `run` (a
        `SearchRun`) neither continues (`resume`, with the settings it must keep) nor
        replaces (`overwrite`)."""
        if os.path.exists(self.state_path) and not run.resume and not run.overwrite:
            raise NASRecError(f"{self.directory}: holds an earlier search; continue it with "
                              "--resume, replace it with --overwrite or choose another "
                              "--output")
        path = self.path(SEARCH_RUN_FILE)
        if run.resume and os.path.exists(path):
            changes = changed_settings(run, read_json(path))
            if changes:
                raise NASRecError(f"{path}: --resume with other settings than the search's: "
                                  f"{'; '.join(changes)}; resume with the search's settings, "
                                  "or start afresh with --overwrite or another --output")

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Create the folder; an earlier search in it is continued (`resume`), replaced
        (`overwrite`: its files removed) or refused."""
        if os.path.exists(self.state_path) and not resume and not overwrite:
            raise NASRecError(f"{self.directory}: holds an earlier search; continue it with "
                              "--resume, replace it with --overwrite or choose another "
                              "--output")
        make_directory(self.directory)
        if os.path.exists(self.state_path) and not resume:
            for name in (SEARCH_STATE_FILE, CANDIDATES_FILE, SEARCH_SUMMARY_FILE,
                         BEST_ARCHITECTURE_FILE, SEARCH_RUN_FILE):
                if os.path.exists(self.path(name)):
                    os.remove(self.path(name))
        if not resume and os.path.exists(self.candidates_path):
            os.remove(self.candidates_path)

    def start(self, run: Any) -> None:
        """`prepare` the folder for `run` (a `SearchRun`) and `record_settings`."""
        self.prepare(resume=run.resume, overwrite=run.overwrite)
        self.record_settings(run)

    def record_settings(self, run: Any) -> None:
        """Write `search_run.json`: the settings (`SearchRun`) the search runs with."""
        write_json(self.path(SEARCH_RUN_FILE), asdict(run))

    def append_candidate(self, record: Mapping[str, Any]) -> None:
        """Append one candidate's record to `candidates.jsonl` (a `SearchBase.on_candidate`)."""
        append_jsonl(self.candidates_path, [record])

    def resume(self, search: SearchBase) -> bool:
        """Load the saved state into `search` and keep as many lines of `candidates.jsonl` as
        it has candidates (a partial generation is dropped); True when a state was loaded."""
        resumed = search.resume(self.state_path)
        if not resumed:
            logger.info("--resume: no saved search in %s, starting afresh", self.directory)
        self._keep_candidates(search.evaluations if resumed else 0)
        return resumed

    def _keep_candidates(self, count: int) -> None:
        if not os.path.exists(self.candidates_path):
            return
        with open(self.candidates_path) as handle:
            lines = [line for line in handle if line.strip()][:count]
        write_text(self.candidates_path, "".join(lines))

    def write_best(self, architecture: Architecture) -> str:
        """`best_architecture.json`; its path."""
        return write_text(self.path(BEST_ARCHITECTURE_FILE), architecture.to_json(indent=2) + "\n")

    def write_plots(self, search: SearchBase, max_mflops: Optional[float]) -> dict[str, str]:
        """progress.png, loss_cdf.png and pareto.png of `search`; their paths by name."""
        losses = [c.loss for c in search.candidates]
        mflops = [float(c.result.get("mflops", float("nan"))) for c in search.candidates]
        front = pareto_front(list(zip(mflops, losses)))
        return {
            "progress": plot_search_progress(search.history, self.path(PLOT_FILES["progress"]),
                                             title=f"{search.kind} search"),
            "loss_cdf": plot_loss_cdf({search.kind: losses}, self.path(PLOT_FILES["loss_cdf"])),
            "pareto": plot_pareto(mflops, losses, front, self.path(PLOT_FILES["pareto"]),
                                  max_mflops=max_mflops),
        }

    def write_results(self, search: SearchBase, settings: Mapping[str, Any],
                      scoring: Mapping[str, Any], supernet: Mapping[str, Any],
                      timing: Mapping[str, float]) -> dict[str, Any]:
        """The best architecture, the plots and `search.json` of a finished search; returns
        the summary written.

        Args:
            search: the strategy after `run()` (at least one candidate).
            settings: the stage's settings (`SearchRun` as a dict; "max_mflops" is read).
            scoring: how candidates were scored (`ScoringConfig.to_dict()`).
            supernet: where the supernet came from (run_dir, checkpoint, step, space, ...).
            timing: "load_seconds" and "search_seconds_this_run".
        """
        best = search.best()
        if best is None:
            raise NASRecError("search: no candidate was scored")
        self.write_best(best.architecture)
        plots = self.write_plots(search, settings.get("max_mflops"))
        losses = [c.loss for c in search.candidates]
        mflops = [float(c.result.get("mflops", float("nan"))) for c in search.candidates]
        scored_seconds = [float(c.result.get("seconds", 0.0)) for c in search.candidates]
        summary = {
            "config": dict(settings),
            "scoring": dict(scoring),
            "evolution": None,  # every summary has the key; evolution fills it below
            **search.summary_settings(),
            "supernet": dict(supernet),
            **search.summary(),
            "best_architecture_file": BEST_ARCHITECTURE_FILE,
            "pareto_front": pareto_front(list(zip(mflops, losses))),
            "history": search.history,
            "flops_convention": FLOPS_CONVENTION,
            "timing": {**timing, "candidate_seconds_total": sum(scored_seconds),
                       "candidate_seconds_mean": sum(scored_seconds) / len(scored_seconds)},
            "plots": {name: os.path.basename(path) for name, path in plots.items()},
        }
        write_json(self.path(SEARCH_SUMMARY_FILE), summary)
        return summary
