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

import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from nasrec_torchrec.artifacts import read_json, write_json
from nasrec_torchrec.errors import NASRecError
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
        todo = [job for job in jobs if not job.config.resume or finished_results(
            job.config, job.model, job.protocol, "a run finished",
            "remove it or choose another --output") is None]
        spread_over_ranks(todo, lambda share: _train_share(share, command))
    return True


def _train_share(share: list[FinalJob], command: str) -> list[None]:
    """Train this rank's `share` in one fresh one-rank process."""
    from nasrec_torchrec.train.fresh_process import environment_without_torchrun, run_child

    if not share:
        return []
    with tempfile.TemporaryDirectory(prefix="nasrec_final_runs_") as folder:
        runs_file = os.path.join(folder, "runs.json")
        write_json(runs_file, [job.to_dict(command) for job in share])
        code = run_child([sys.executable, "-m", "nasrec_torchrec.stages.side_by_side",
                          runs_file], environment_without_torchrun())
    if code:
        raise NASRecError(f"training {len(share)} final run(s) in a fresh process failed "
                          f"(exit {code}; its messages are above): {share[0].config.output} ...")
    return [None] * len(share)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: `RUNS.json` (a list of `FinalJob.to_dict` records), trained in turn."""
    from nasrec_torchrec.logs import setup_logging, verbose_from_environment
    from nasrec_torchrec.stages.final import run_final

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m nasrec_torchrec.stages.side_by_side RUNS.json", file=sys.stderr)
        return 2
    setup_logging(verbose_from_environment())
    try:
        for index, record in enumerate(read_json(args[0])):
            source = f"{args[0]}: run {index}"
            run_final(TrainConfig.from_dict(record["config"], source=source),
                      ModelSpec.from_dict(record["model"], source), record["protocol"],
                      record["command"])
    except NASRecError as error:
        print(f"nasrec: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
