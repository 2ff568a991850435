"""Final runs side by side over the ranks (`--spread`): under torchrun, the runs of a final
stage (its seeds) or of the baselines (every model and seed) that are not finished yet are
shared out over the ranks, and each rank trains its share one run after the other in a
fresh one-rank process (`train.fresh_process`): every run is trained exactly as a lone
process trains it, whichever rank takes it and however many ranks there are. The stage
then goes on as in a lone process, finding every run finished. Without `--spread` (or on
one rank) each run is trained in turn, sharded over every rank (the way for tables too big
for one rank).

A run travels to its child process as JSON (`python -m nasrec_torchrec.stages.side_by_side
RUNS.json`: its `TrainConfig`, `ModelSpec`, protocol and the command line it records).

Example::

    train_side_by_side([FinalJob(config, spec, "bars"), FinalJob(repeat, spec, "bars")])
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.train.config import TrainConfig


@dataclass(frozen=True)
class FinalJob:
    """One final run: what `run_final(config, model, protocol)` trains."""

    config: TrainConfig
    model: ModelSpec
    protocol: str

    def to_dict(self, command: str) -> dict[str, Any]:
        """JSON-ready, with the command line the run's results record."""
        return {"config": self.config.to_dict(), "model": self.model.to_dict(),
                "protocol": self.protocol, "command": command}


def train_side_by_side(jobs: Sequence[FinalJob]) -> bool:
    """Under torchrun with several ranks, train the unfinished runs of `jobs` spread over
    the ranks (see the module; a collective: every rank passes the same jobs) and return
    True; in a lone process train nothing and return False. A run finished with other
    settings is refused before anything trains; a run that fails raises on every rank."""
    import torch.distributed as dist

    from nasrec_torchrec.stages.final import finished_results
    from nasrec_torchrec.train.ranks import job_group, launched_on_many_ranks, spread_over_ranks

    if not jobs or not (dist.is_initialized() or launched_on_many_ranks()):
        return False
    command = " ".join(["nasrec", *map(shlex.quote, sys.argv[1:])])
    with job_group(jobs[0].config.threads, jobs[0].config.device) as context:
        if context is None or context.world_size == 1:
            return False
        unfinished = [job for job in jobs if not job.config.resume or finished_results(
            job.config, job.model, job.protocol, "a run finished",
            "remove it or choose another --output") is None]
        spread_over_ranks(unfinished, lambda share: _train_share(share, command))
    return True


def _train_share(share: list[FinalJob], command: str) -> list[None]:
    """Train this rank's `share` in one fresh one-rank process."""
    from nasrec_torchrec.train.fresh_process import run_records_in_child

    if share:
        run_records_in_child(__name__, [job.to_dict(command) for job in share],
                             f"training {len(share)} final run(s) ({share[0].config.output} "
                             "...)")
    return [None] * len(share)


def _train_records(path: str, records: list[Any]) -> None:
    from nasrec_torchrec.stages.final import run_final

    for index, record in enumerate(records):
        source = f"{path}: run {index}"
        run_final(TrainConfig.from_dict(record["config"], source=source),
                  ModelSpec.from_dict(record["model"], source), record["protocol"],
                  record["command"])


if __name__ == "__main__":
    from nasrec_torchrec.train.fresh_process import records_main

    sys.exit(records_main("nasrec_torchrec.stages.side_by_side", _train_records))
