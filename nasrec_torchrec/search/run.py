"""The search stage as a library call: `run_search(SearchRun(...))`.

Every candidate is scored in this process from the one loaded supernet (`SubnetScorer`): by
default its inherited final FC is fine-tuned (500 steps of 256 rows, rate 0.04, cosine, with
the supernet's optimizer: Adagrad, or Adam when it trained with Adam), then it is evaluated on
the whole validation split. The strategy (`SEARCH_STRATEGIES`) never
scores a duplicate and, with `max_mflops`, rejects candidates over the FLOPs limit before
scoring. The state is saved after every generation; `resume` continues an interrupted search
exactly. The files written are described in `search/outputs.py`.

Example::

    summary = run_search(SearchRun(supernet="runs/supernet", output="runs/search",
                                   method="random", budget=500))
    summary["best"]["log_loss"]
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from nasrec_torchrec.search.outputs import SearchOutputs
from nasrec_torchrec.search.settings import ScoringRun, SearchRun
from nasrec_torchrec.search.strategies import SEARCH_STRATEGIES


def load_scorer(run: ScoringRun, finetune: str = "head") -> tuple[Any, Any]:
    """(`LoadedSupernet`, `SubnetScorer`) of the supernet, data and scoring of `run`; the
    fine-tuning's optimizer "auto" is the supernet run's (and Adam's betas and the body's
    precision are its)."""
    import torch

    from nasrec_torchrec.search.loading import load_supernet
    from nasrec_torchrec.search.scoring import ScoringConfig, SubnetScorer
    from nasrec_torchrec.data.loader import ParquetBatchLoader
    from nasrec_torchrec.train.config import TrainConfig
    from nasrec_torchrec.train.precision import check_precision

    loaded = load_supernet(run.supernet, run.data, run.checkpoint)
    ParquetBatchLoader(loaded.data, run.eval_split, run.eval_batch_size).require_rows(
        "scoring the candidates (--eval-split)")
    trained = TrainConfig.from_dict(loaded.config, source=loaded.run_dir)
    check_precision(trained.precision, torch.device("cpu"), loaded.run_dir)
    optimizer = run.finetune_optimizer
    config = ScoringConfig(
        finetune=finetune, finetune_steps=run.finetune_steps,
        batch_size=run.finetune_batch_size, learning_rate=run.finetune_lr,
        seed=run.seed, eval_split=run.eval_split, eval_batch_size=run.eval_batch_size,
        eval_rows=run.eval_rows,
        optimizer=trained.optimizer if optimizer == "auto" else optimizer,
        betas=tuple(trained.betas), precision=trained.precision)  # type: ignore[arg-type]
    return loaded, SubnetScorer(loaded.model, loaded.data, loaded.embedding_cap, config)


def set_threads(threads: int | None) -> None:
    """Pin the intra-op threads of this single process as the trainer does."""
    from nasrec_torchrec.train.distributed import set_threads as pin

    pin(threads, 1)


def run_search(run: SearchRun, source: str = "search") -> dict[str, Any]:
    """Run (or, with `run.resume`, continue) a search; returns the summary (`search.json`)."""
    run.validate(source)
    set_threads(run.threads)
    outputs = SearchOutputs(run.output)
    outputs.check(run)
    started = time.perf_counter()
    loaded, scorer = load_scorer(run, run.finetune)
    load_seconds = time.perf_counter() - started
    outputs.prepare(resume=run.resume, overwrite=run.overwrite)
    outputs.record_settings(run)
    space = loaded.supernet.space
    settings = asdict(run)

    def cost(architecture: Any) -> float:
        return scorer.cost(architecture).mflops

    search = SEARCH_STRATEGIES[run.method].from_settings(
        space, scorer.score, settings, seed=run.seed, budget=run.budget, cost=cost,
        max_mflops=run.max_mflops, state_path=outputs.state_path,
        on_candidate=outputs.append_candidate)
    if run.resume:
        outputs.resume(search)
    search_started = time.perf_counter()
    search.run(progress=run.progress)
    search_seconds = time.perf_counter() - search_started
    supernet = {"run_dir": loaded.run_dir, "checkpoint": loaded.checkpoint, "step": loaded.step,
                "space": space.name, "data": loaded.data, "embedding_cap": loaded.embedding_cap}
    return outputs.write_results(
        search, settings, scorer.config.to_dict(), supernet,
        {"load_seconds": load_seconds, "search_seconds_this_run": search_seconds})
