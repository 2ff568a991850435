"""The one-command pipeline: prepare -> train-supernet -> search -> retrain -> final.

`plan_stages` turns the `ExperimentConfig` into one typed run config per stage (a section's
`args` are parsed by that stage's own flags, derived from its run config); `run_pipeline`
calls each stage's library function (`run_stage.STAGE_FUNCTIONS`) in this process, into one
output directory: `OUTPUT/{data,supernet,search,retrain,final}`. A stage whose results file
exists is skipped (`data/schema.json`, `supernet/results.json`, `search/search.json`,
`retrain/retrain.json`, `final/results.json` + `report.md`); the others run with `resume`,
so an interrupted stage continues from its latest checkpoint (or saved search state).
`OUTPUT/pipeline.json` holds the effective config and, per stage, its status, the
equivalent command line and its time; at the end the final report gets the stage table.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from nasrec_torchrec.artifacts import (
    ARCHITECTURE_FILE, BEST_ARCHITECTURE_FILE, PIPELINE_FILE, RESULTS_FILE, RETRAIN_FILE,
    SCHEMA_FILE, SEARCH_SUMMARY_FILE, make_directory, read_json, write_json)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.pipeline.config import ExperimentConfig
from nasrec_torchrec.pipeline.run_stage import STAGE_FUNCTIONS, run_in_fresh_process
from nasrec_torchrec.settings import StrictParser, add_options, from_args, to_argv
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.options import add_run_arguments, run_from_args

logger = logging.getLogger(__name__)

STAGES = ("prepare", "supernet", "search", "retrain", "final", "baselines")
SINGLE_PROCESS_STAGES = frozenset({"prepare"})
"""Under torchrun these run on rank 0, in a child process without the ranks' process group,
while the other ranks wait (the others use every rank: training stages shard, the search
and the retraining spread their candidates over the ranks)."""


@dataclass
class Stage:
    """One step of the pipeline.

    Args:
        name: the stage (one of `STAGES`). command: the `nasrec` subcommand it equals (a key
        of `STAGE_FUNCTIONS`; "" for a given dataset). run: its typed run config.
        output: its directory. done: whether its results exist.
    """

    name: str
    command: str
    run: Any
    output: str
    done: Callable[[], bool] = field(repr=False, default=lambda: False)

    def command_line(self) -> str:
        """The equivalent `nasrec <command> <flags>`, shell-quoted."""
        return " ".join(["nasrec", self.command, *map(shlex.quote, to_argv(self.run))])

    def execute(self) -> Any:
        """Call the stage's function on its run config in this process."""
        function, _ = STAGE_FUNCTIONS[self.command].load()
        return function(self.run, f"pipeline stage {self.name}")


def _exists(*parts: str) -> Callable[[], bool]:
    return lambda: os.path.exists(os.path.join(*parts))


def _with_args(run: Any, args: list[str], where: str, early_stopping: bool = False) -> Any:
    """`run` with a config section's further flags (`args`) applied by the stage's parser."""
    if not args:
        return run
    parser = StrictParser(prog=where, add_help=False)
    if isinstance(getattr(run, "train", None), TrainConfig):
        add_run_arguments(parser, type(run), early_stopping)
        return run_from_args(type(run), parser.parse_args(args), early_stopping, base=run)
    add_options(parser, type(run))
    return from_args(type(run), parser.parse_args(args), run)


def _train(config: ExperimentConfig, section: Any, data: str, output: str,
           **settings: Any) -> TrainConfig:
    """The `TrainConfig` of a training section (its rate for the dense weights and tables)."""
    train = TrainConfig(data=data, output=output, epochs=section.epochs,
                        max_steps=section.max_steps, batch_size=section.batch_size,
                        learning_rate=section.lr, embedding_learning_rate=section.lr,
                        lr_warmup_steps=section.lr_warmup_steps, seed=config.seed,
                        threads=config.threads, device=config.device,
                        progress_bar=config.progress, resume=True, **settings)
    if section.checkpoint_every is not None:
        train.checkpoint_every = section.checkpoint_every
    return train


def _data_stage(config: ExperimentConfig, data_dir: str, data_given: bool,
                where: str) -> Stage:
    from nasrec_torchrec.stages.data import PrepareRun, SynthRun

    prepare = config.prepare
    has_schema = _exists(data_dir, SCHEMA_FILE)
    if prepare.synth:
        run: Any = SynthRun(like=prepare.synth, rows=prepare.rows, output=data_dir,
                            seed=config.seed)
        return Stage("prepare", "synth", _with_args(run, prepare.args, f"{where}: "
                     "field 'prepare.args'"), data_dir, has_schema)
    if prepare.format:
        run = PrepareRun(format=prepare.format, input=list(prepare.inputs),
                         split=prepare.split, val_from_train=prepare.val_from_train,
                         output=data_dir, seed=config.seed)
        return Stage("prepare", "prepare", _with_args(run, prepare.args, f"{where}: "
                     "field 'prepare.args'"), data_dir, has_schema)
    if not data_given:
        raise NASRecError("pipeline: give --data (a prepared dataset), --synth SHAPE, or a "
                          "config whose prepare section names the raw data")
    return Stage("prepare", "", None, data_dir, has_schema)


def plan_stages(config: ExperimentConfig, output: str, data: Optional[str],
                where: str = "config") -> list[Stage]:
    """The stages of a pipeline run (typed run configs and done-checks), in order; `where`
    names the config in errors."""
    from nasrec_torchrec.search.settings import SearchRun
    from nasrec_torchrec.stages.baselines import BaselinesRun, baselines_done
    from nasrec_torchrec.stages.final import FinalRun, final_done
    from nasrec_torchrec.stages.retrain import RetrainRun
    from nasrec_torchrec.stages.supernet import SupernetRun

    data_dir = data or os.path.join(output, "data")
    dirs = {name: os.path.join(output, name) for name in STAGES[1:]}
    s, q, r, f = config.supernet, config.search, config.retrain, config.final
    supernet = SupernetRun(space=s.space, strategy=s.strategy, path_warmup=s.path_warmup,
                           layer_norm=s.layer_norm,
                           train=_train(config, s, data_dir, dirs["supernet"],
                                        embedding_cap=s.embedding_cap))
    search = SearchRun(
        supernet=dirs["supernet"], data=data_dir, output=dirs["search"], method=q.method,
        preset=q.preset, finetune=q.finetune, finetune_steps=q.finetune_steps,
        finetune_batch_size=q.finetune_batch_size, finetune_lr=q.finetune_lr,
        seed=config.seed, resume=True, budget=q.budget, generations=q.generations,
        population=q.population, sample_size=q.sample_size, children=q.children,
        eval_rows=q.eval_rows, max_mflops=q.max_mflops, threads=config.threads,
        progress=config.progress)
    retrain = RetrainRun(search=dirs["search"], top_k=r.top_k, layer_norm=config.layer_norm,
                         train=_train(config, r, data_dir, dirs["retrain"],
                                      embedding_cap=r.embedding_cap))
    final = FinalRun(arch=os.path.join(dirs["retrain"], BEST_ARCHITECTURE_FILE),
                     protocol=f.protocol, layer_norm=config.layer_norm, repeats=f.repeats,
                     spread=f.spread,
                     train=_train(config, f, data_dir, dirs["final"], patience=f.patience,
                                  lr_schedule=f.lr_schedule, embedding_cap=f.embedding_cap))
    final_dir = dirs["final"]
    final = _with_args(final, f.args, f"{where}: field 'final.args'", early_stopping=True)
    stages = [
        _data_stage(config, data_dir, data is not None, where),
        Stage("supernet", "train-supernet",
              _with_args(supernet, s.args, f"{where}: field 'supernet.args'"),
              dirs["supernet"], _exists(dirs["supernet"], RESULTS_FILE)),
        Stage("search", "search", _with_args(search, q.args, f"{where}: field 'search.args'"),
              dirs["search"], _exists(dirs["search"], SEARCH_SUMMARY_FILE)),
        Stage("retrain", "retrain",
              _with_args(retrain, r.args, f"{where}: field 'retrain.args'",
                         early_stopping=True),
              dirs["retrain"], _exists(dirs["retrain"], RETRAIN_FILE)),
        Stage("final", "final", final, final_dir,
              lambda: final_done(final_dir, final.repeats)),
    ]
    models = list(config.baselines.models)
    if models:  # the final model's recipe and seeds by construction, a baseline's settings
        baselines = BaselinesRun(models=models, protocol=final.protocol, repeats=final.repeats,
                                 spread=final.spread,
                                 model_option=list(config.baselines.model_option),
                                 model_setting=list(config.baselines.model_setting),
                                 train=dataclasses.replace(final.train,
                                                           output=dirs["baselines"]))
        baselines.plans(f"{where}: field 'baselines'")  # faults before anything runs
        stages.append(Stage("baselines", "baselines", baselines, dirs["baselines"],
                            lambda: baselines_done(dirs["baselines"], models,
                                                   baselines.repeats)))
    return stages


def _spread_with_baselines(final: Stage, stages: list[Stage]) -> int:
    """With `final.spread` under torchrun, train the final model's seeds and the unfinished
    baselines' runs in one pass spread over the ranks (`stages/side_by_side.py`), so that no
    rank waits between the two stages; the number of runs of that pass (0: none made, the
    stages then train as usual)."""
    from nasrec_torchrec.stages.baselines import baseline_jobs
    from nasrec_torchrec.stages.final import final_jobs
    from nasrec_torchrec.stages.side_by_side import train_side_by_side
    from nasrec_torchrec.train.distributed import broadcast_object

    baselines = next((stage for stage in stages if stage.name == "baselines"), None)
    if not final.run.spread or baselines is None or broadcast_object(baselines.done()):
        return 0
    jobs = final_jobs(final.run) + baseline_jobs(baselines.run)
    return len(jobs) if train_side_by_side(jobs) else 0


def _run_stage(stage: Stage, output: str, fresh_process: bool = False) -> None:
    if not fresh_process:
        stage.execute()
        return
    run_file = os.path.join(output, f".{stage.name}.run.json")
    code = run_in_fresh_process(stage.command, stage.run, run_file)
    if code:
        raise NASRecError(f"pipeline: stage {stage.name} failed (exit {code})")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_pipeline(config: ExperimentConfig, output: str, data: Optional[str] = None,
                 stop_after: Optional[str] = None, where: str = "config") -> dict[str, Any]:
    """Run (or continue) every stage; returns the content of `pipeline.json`.

    Args:
        config: the effective experiment config.
        output: the pipeline's directory.
        data: a prepared dataset (or where `prepare` writes it; default OUTPUT/data).
        stop_after: run the stages up to and including this one only.
        where: the config's file (named in errors).
    """
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.ranks import JOB_TIMEOUT_SECONDS

    if stop_after is not None and stop_after not in STAGES:
        raise NASRecError(f"--stop-after must be one of {', '.join(STAGES)}")
    context = None
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # one group for every stage (the stages reuse it), with a timeout long enough for
        # the ranks that wait while rank 0 alone prepares the data or for the others' shares
        context = init_distributed(config.device, config.threads, JOB_TIMEOUT_SECONDS)
    try:
        return _run_pipeline(config, output, data, stop_after,
                             context is None or context.is_main, context is not None, where)
    finally:
        teardown(context)


def _run_pipeline(config: ExperimentConfig, output: str, data: Optional[str],
                  stop_after: Optional[str], is_main: bool, multi_rank: bool = False,
                  where: str = "config") -> dict[str, Any]:
    from nasrec_torchrec.stages.final import final_done
    from nasrec_torchrec.train.distributed import barrier, broadcast_object

    def save(record: dict[str, Any]) -> None:
        if is_main:
            write_json(path, record)

    def say(message: str) -> None:
        if is_main:
            print(f"[pipeline] {message}", flush=True)

    stages = plan_stages(config, output, data, where)  # bad settings fail before any file
    make_directory(output)
    path = os.path.join(output, PIPELINE_FILE)
    previous = read_json(path).get("stages", {}) if os.path.exists(path) else {}
    record: dict[str, Any] = {"config": config.to_dict(), "output": os.path.abspath(output),
                              "data": os.path.abspath(stages[0].output), "stages": {},
                              "started": _now()}
    for stage in stages:
        entry = dict(previous.get(stage.name, {}))
        entry.update({"command": stage.command_line() if stage.command else None,
                      "output": os.path.abspath(stage.output)})
        if broadcast_object(stage.done()):
            logger.info("pipeline: stage %s: done earlier (%s), skipped", stage.name,
                        stage.output)
            say(f"{stage.name}: done earlier, skipped ({stage.output})")
            entry.update({"status": "skipped", "skipped_at": _now()})
        elif not stage.command:
            raise NASRecError(f"{stage.output}: not a prepared dataset (no schema.json)")
        else:
            say(f"{stage.name}: {stage.command_line()}")
            started = time.perf_counter()
            entry.update({"status": "running", "started": _now()})
            record["stages"][stage.name] = entry
            save(record)
            if stage.name == "final" and stop_after != "final":
                spread = _spread_with_baselines(stage, stages)
                if spread:
                    entry["runs_spread"] = spread
                    say(f"final: {spread} runs (the final model's seeds and the baselines') "
                        "trained side by side over the ranks")
            if stage.name not in SINGLE_PROCESS_STAGES:
                _run_stage(stage, output)
            elif is_main:
                _run_stage(stage, output, fresh_process=multi_rank)
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
    by_name = {stage.name: stage for stage in stages}
    final_dir = by_name["final"].output
    if is_main and final_done(final_dir):
        stage_table = {name: {"seconds": entry.get("seconds"), "command": entry.get("command"),
                              "skipped": entry.get("status") == "skipped"
                              and entry.get("seconds") is None}
                       for name, entry in record["stages"].items()}
        record.update(_report(config, final_dir, by_name.get("baselines"), stage_table, say))
    save(record)
    return record


def _report(config: ExperimentConfig, final_dir: str, baselines: Optional[Stage],
            stage_table: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """Write the final report (with the leaderboard when the baselines are done) and the
    leaderboard into the final `results.json`; the pipeline record's `report`, `final` and
    `leaderboard` entries."""
    from nasrec_torchrec.space import load_architecture
    from nasrec_torchrec.stages.baselines import baseline_dir
    from nasrec_torchrec.stages.leaderboard import leaderboard, verdict_line
    from nasrec_torchrec.stages.report import write_report

    results = read_json(os.path.join(final_dir, RESULTS_FILE))
    entry: dict[str, Any] = {}
    if baselines is not None and baselines.done():
        board = leaderboard(results, {
            model: read_json(os.path.join(baseline_dir(baselines.output, model), RESULTS_FILE))
            for model in baselines.run.models})
        if results.get("leaderboard") != board:  # a rerun with nothing new writes nothing
            write_json(os.path.join(final_dir, RESULTS_FILE), {**results, "leaderboard": board})
        results["leaderboard"] = entry["leaderboard"] = board
        say(verdict_line(board))
    architecture = load_architecture(os.path.join(final_dir, ARCHITECTURE_FILE))
    entry["report"] = write_report(final_dir, {**results, "name": config.name}, architecture,
                                   stage_table)
    entry["final"] = {"metrics": results.get("metrics"),
                      "mflops": results.get("cost", {}).get("mflops"),
                      "params": results.get("cost", {}).get("params")}
    return entry
