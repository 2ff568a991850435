"""The one-command pipeline: prepare -> train-supernet -> search -> retrain -> final.

Every stage runs in this process through its own command (`nasrec_torchrec.commands.*`),
with an argv built from the `ExperimentConfig`, into one output directory:
`OUTPUT/{data,supernet,search,retrain,final}`. A stage whose results file exists is skipped
(`data/schema.json`, `supernet/results.json`, `search/search.json`, `retrain/retrain.json`,
`final/results.json` + `report.md`); the others run with `--resume`, so an interrupted stage
continues from its latest checkpoint (or saved search state). `OUTPUT/pipeline.json` holds
the effective config and, per stage, its status, command line and time; at the end the final
report gets the stage table.
"""

from __future__ import annotations

import datetime
import logging
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.config import ExperimentConfig
from nasrec_torchrec.pipeline.training import read_json, write_json

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.json"
STAGES = ("prepare", "supernet", "search", "retrain", "final")
SINGLE_PROCESS_STAGES = frozenset({"prepare", "search"})
"""Under torchrun these run on rank 0, in a child process without the ranks' process group,
while the other ranks wait."""
GROUP_TIMEOUT_SECONDS = 7 * 24 * 3600.0
"""The pipeline's process group outlives a rank-0-only stage (a search can take hours)."""


@dataclass
class Stage:
    """One step of the pipeline.

    Args:
        name: the stage (a key of `STAGES`). command: the `nasrec` subcommand it runs.
        module: the command module's name. argv: its arguments.
        done: whether its results exist. output: its directory.
    """

    name: str
    command: str
    module: str
    argv: list[str]
    output: str
    done: Callable[[], bool] = field(repr=False, default=lambda: False)

    def command_line(self) -> str:
        """`nasrec <command> <argv>`, shell-quoted."""
        return " ".join(["nasrec", self.command, *map(shlex.quote, self.argv)])


def _flag(argv: list[str], name: str, value: Any) -> None:
    if value is None or value is False:
        return
    if value is True:
        argv.append(name)
    else:
        argv += [name, str(value)]


def _common_train(argv: list[str], config: ExperimentConfig, section: Any) -> None:
    _flag(argv, "--epochs", section.epochs)
    _flag(argv, "--max-steps", section.max_steps)
    _flag(argv, "--batch-size", section.batch_size)
    _flag(argv, "--lr", section.lr)
    _flag(argv, "--embedding-lr", section.lr)
    _flag(argv, "--seed", config.seed)
    _flag(argv, "--threads", config.threads)
    _flag(argv, "--device", config.device)
    _flag(argv, "--no-progress", not config.progress)
    if section.checkpoint_every is not None:
        _flag(argv, "--checkpoint-every", section.checkpoint_every)
    argv.append("--resume")


def _exists(*parts: str) -> Callable[[], bool]:
    return lambda: os.path.exists(os.path.join(*parts))


def plan_stages(config: ExperimentConfig, output: str, data: Optional[str]) -> list[Stage]:
    """The stages of a pipeline run (argv and done-checks), in order."""
    from nasrec_torchrec.pipeline.final import final_done

    data_dir = data or os.path.join(output, "data")
    stages: list[Stage] = []
    prepare = config.prepare
    has_schema = _exists(data_dir, "schema.json")
    if prepare.synth:
        argv = ["--like", prepare.synth, "--rows", str(prepare.rows), "--output", data_dir,
                "--seed", str(config.seed), *prepare.args]
        stages.append(Stage("prepare", "synth", "synth", argv, data_dir, has_schema))
    elif prepare.format:
        argv = ["--format", prepare.format, "--input", *prepare.inputs, "--split", prepare.split,
                "--output", data_dir, "--seed", str(config.seed), *prepare.args]
        stages.append(Stage("prepare", "prepare", "prepare", argv, data_dir, has_schema))
    else:
        if not data:
            raise NASRecError("pipeline: give --data (a prepared dataset), --synth SHAPE, or a "
                              "config whose prepare section names the raw data")
        stages.append(Stage("prepare", "(given)", "", [], data_dir, has_schema))

    supernet_dir = os.path.join(output, "supernet")
    s = config.supernet
    argv = ["--data", data_dir, "--output", supernet_dir, "--space", s.space,
            "--strategy", s.strategy, "--path-warmup", str(s.path_warmup),
            "--embedding-cap", str(s.embedding_cap)]
    _flag(argv, "--no-layer-norm", not s.layer_norm)
    _common_train(argv, config, s)
    stages.append(Stage("supernet", "train-supernet", "train_supernet", argv + s.args,
                        supernet_dir, _exists(supernet_dir, "results.json")))

    search_dir = os.path.join(output, "search")
    q = config.search
    argv = ["--supernet", supernet_dir, "--data", data_dir, "--output", search_dir,
            "--method", q.method, "--preset", q.preset, "--finetune", q.finetune,
            "--finetune-steps", str(q.finetune_steps),
            "--finetune-batch-size", str(q.finetune_batch_size),
            "--finetune-lr", str(q.finetune_lr), "--seed", str(config.seed), "--resume"]
    for flag, value in (("--budget", q.budget), ("--generations", q.generations),
                        ("--population", q.population), ("--sample-size", q.sample_size),
                        ("--children", q.children), ("--eval-rows", q.eval_rows),
                        ("--max-mflops", q.max_mflops), ("--threads", config.threads)):
        _flag(argv, flag, value)
    _flag(argv, "--no-progress", not config.progress)
    stages.append(Stage("search", "search", "search", argv + q.args, search_dir,
                        _exists(search_dir, "search.json")))

    retrain_dir = os.path.join(output, "retrain")
    r = config.retrain
    argv = ["--search", search_dir, "--data", data_dir, "--output", retrain_dir,
            "--top-k", str(r.top_k), "--embedding-cap", str(r.embedding_cap)]
    _flag(argv, "--no-layer-norm", not config.layer_norm)
    _common_train(argv, config, r)
    stages.append(Stage("retrain", "retrain", "retrain", argv + r.args, retrain_dir,
                        _exists(retrain_dir, "retrain.json")))

    final_dir = os.path.join(output, "final")
    f = config.final
    argv = ["--arch", os.path.join(retrain_dir, "best_architecture.json"), "--data", data_dir,
            "--output", final_dir, "--protocol", f.protocol, "--patience", str(f.patience),
            "--lr-schedule", f.lr_schedule]
    if f.embedding_cap is not None:
        argv += ["--embedding-cap", str(f.embedding_cap)]
    _flag(argv, "--no-layer-norm", not config.layer_norm)
    _common_train(argv, config, f)
    stages.append(Stage("final", "final", "final", argv + f.args, final_dir,
                        lambda: final_done(final_dir)))
    return stages


def _run_stage(stage: Stage, fresh_process: bool = False) -> None:
    from nasrec_torchrec.pipeline.run_stage import run_in_fresh_process, run_module

    if fresh_process:
        code = run_in_fresh_process(stage.module, stage.argv)
    else:
        try:
            code = run_module(stage.module, stage.argv)
        except SystemExit:
            raise NASRecError(f"pipeline: stage {stage.name}: invalid arguments: "
                              f"{stage.command_line()}") from None
    if code:
        raise NASRecError(f"pipeline: stage {stage.name} failed (exit {code})")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_pipeline(config: ExperimentConfig, output: str, data: Optional[str] = None,
                 stop_after: Optional[str] = None) -> dict[str, Any]:
    """Run (or continue) every stage; returns the content of `pipeline.json`.

    Args:
        config: the effective experiment config.
        output: the pipeline's directory.
        data: a prepared dataset (or where `prepare` writes it; default OUTPUT/data).
        stop_after: run the stages up to and including this one only.
    """
    from nasrec_torchrec.train.distributed import init_distributed, teardown

    if stop_after is not None and stop_after not in STAGES:
        raise NASRecError(f"--stop-after must be one of {', '.join(STAGES)}")
    context = None
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # one group for every stage (the stages reuse it), with a timeout long enough for
        # the ranks that wait while rank 0 alone prepares the data or searches
        context = init_distributed(config.device, config.threads, GROUP_TIMEOUT_SECONDS)
    try:
        return _run_pipeline(config, output, data, stop_after,
                             context is None or context.is_main, context is not None)
    finally:
        teardown(context)


def _run_pipeline(config: ExperimentConfig, output: str, data: Optional[str],
                  stop_after: Optional[str], is_main: bool, multi_rank: bool = False
                  ) -> dict[str, Any]:
    from nasrec_torchrec.pipeline.final import final_done
    from nasrec_torchrec.pipeline.report import write_report
    from nasrec_torchrec.train.distributed import broadcast_object
    from nasrec_torchrec.train.distributed import barrier

    def save(record: dict[str, Any]) -> None:
        if is_main:
            write_json(path, record)

    def say(message: str) -> None:
        if is_main:
            print(f"[pipeline] {message}", flush=True)

    os.makedirs(output, exist_ok=True)
    stages = plan_stages(config, output, data)
    path = os.path.join(output, PIPELINE_FILE)
    previous = read_json(path).get("stages", {}) if os.path.exists(path) else {}
    record: dict[str, Any] = {"config": config.to_dict(), "output": os.path.abspath(output),
                              "data": os.path.abspath(stages[0].output), "stages": {},
                              "started": _now()}
    for stage in stages:
        entry = dict(previous.get(stage.name, {}))
        entry.update({"command": stage.command_line() if stage.module else None,
                      "output": os.path.abspath(stage.output)})
        if broadcast_object(stage.done()):
            logger.info("pipeline: stage %s: done earlier (%s), skipped", stage.name,
                        stage.output)
            say(f"{stage.name}: done earlier, skipped ({stage.output})")
            entry.update({"status": "skipped", "skipped_at": _now()})
        elif not stage.module:
            raise NASRecError(f"{stage.output}: not a prepared dataset (no schema.json)")
        else:
            say(f"{stage.name}: {stage.command_line()}")
            started = time.perf_counter()
            entry.update({"status": "running", "started": _now()})
            record["stages"][stage.name] = entry
            save(record)
            if stage.name not in SINGLE_PROCESS_STAGES:
                _run_stage(stage)
            elif is_main:
                _run_stage(stage, fresh_process=multi_rank)
            if stage.name in SINGLE_PROCESS_STAGES:
                barrier()
            entry.update({"status": "ran", "finished": _now(),
                          "seconds": time.perf_counter() - started})
            say(f"{stage.name}: {entry['seconds']:.1f} s")
        record["stages"][stage.name] = entry
        save(record)
        if stage.name == stop_after:
            break
    record["finished"] = _now()
    final_dir = stages[-1].output
    if is_main and final_done(final_dir):
        from nasrec_torchrec.space import load_architecture

        results = read_json(os.path.join(final_dir, "results.json"))
        results["name"] = config.name
        architecture = load_architecture(os.path.join(final_dir, "architecture.json"))
        stage_table = {name: {"seconds": entry.get("seconds"), "command": entry.get("command"),
                              "skipped": entry.get("status") == "skipped"
                              and entry.get("seconds") is None}
                       for name, entry in record["stages"].items()}
        record["report"] = write_report(final_dir, results, architecture, stage_table)
        record["final"] = {"metrics": results.get("metrics"),
                           "mflops": results.get("cost", {}).get("mflops"),
                           "params": results.get("cost", {}).get("params")}
    save(record)
    return record
