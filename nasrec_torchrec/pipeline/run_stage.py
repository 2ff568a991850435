"""The stage functions by name, and one stage run in a fresh process:
`python -m nasrec_torchrec.pipeline.run_stage STAGE RUN.json`.

The pipeline uses the fresh process under torchrun for the stage that runs on rank 0 alone
(prepare): in the ranks' own process the pipeline's process group is initialised, and a
collective would wait for the other ranks. The stage's typed run config travels as JSON (no
command line in between).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import asdict
from typing import Any, Callable, NamedTuple, Sequence

from nasrec_torchrec.artifacts import read_json, write_json


class StageFunction(NamedTuple):
    """Where a stage's function and its run config's class live."""

    module: str
    function: str
    run_class: str

    def load(self) -> tuple[Callable[..., Any], type]:
        """(the function, the run config class)."""
        module = importlib.import_module(self.module)
        return getattr(module, self.function), getattr(module, self.run_class)


STAGE_FUNCTIONS: dict[str, StageFunction] = {
    "synth": StageFunction("nasrec_torchrec.stages.data", "synth", "SynthRun"),
    "prepare": StageFunction("nasrec_torchrec.stages.data", "prepare", "PrepareRun"),
    "train-supernet": StageFunction("nasrec_torchrec.stages.supernet", "train_supernet",
                                    "SupernetRun"),
    "search": StageFunction("nasrec_torchrec.search.run", "run_search", "SearchRun"),
    "retrain": StageFunction("nasrec_torchrec.stages.retrain", "retrain", "RetrainRun"),
    "final": StageFunction("nasrec_torchrec.stages.final", "final", "FinalRun"),
    "baselines": StageFunction("nasrec_torchrec.stages.baselines", "train_baselines",
                               "BaselinesRun"),
}
"""The `nasrec` command a stage is (its name here) -> its library function."""


def run_in_fresh_process(command: str, run: Any, run_file: str) -> int:
    """Run stage `command` on `run` in a child process without the torchrun environment
    (the run config passes through `run_file`); its exit code."""
    write_json(run_file, asdict(run))
    from nasrec_torchrec.train.fresh_process import environment_without_torchrun, run_child

    argv = [sys.executable, "-m", "nasrec_torchrec.pipeline.run_stage", command, run_file]
    return run_child(argv, environment_without_torchrun())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: `STAGE RUN.json`."""
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.logs import setup_logging, verbose_from_environment
    from nasrec_torchrec.settings import from_mapping

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in STAGE_FUNCTIONS:
        print(f"usage: python -m nasrec_torchrec.pipeline.run_stage "
              f"{{{','.join(STAGE_FUNCTIONS)}}} RUN.json", file=sys.stderr)
        return 2
    setup_logging(verbose_from_environment())
    try:
        function, run_class = STAGE_FUNCTIONS[args[0]].load()
        function(from_mapping(run_class, read_json(args[1]), args[1]))
    except NASRecError as error:
        print(f"nasrec {args[0]}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
