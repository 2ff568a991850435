"""The search stage as a library call: `run_search(SearchRun(...))`.

Every candidate is scored from a loaded supernet (`SubnetScorer`): by default its inherited
final FC is fine-tuned (500 steps of 256 rows, rate 0.04, cosine, with the supernet's
optimizer: Adagrad, or Adam when it trained with Adam), then it is evaluated on the whole
validation split. The strategy (`SEARCH_STRATEGIES`) never scores a duplicate and, with
`max_mflops`, rejects candidates over the FLOPs limit before scoring. The state is saved
after every generation; `resume` continues an interrupted search exactly. The files written
are described in `search/outputs.py`.

Under torchrun every rank loads its own (unsharded) copy of the supernet and runs the same
strategy: each generation's new candidates are drawn alike on every rank, each rank scores
its share of them (`train.ranks.spread_over_ranks`) and every rank records all the results,
so the next generation is drawn alike again. A candidate's score depends on it alone (the
fine-tuning rows and their order come from `seed`, the same for every candidate), so at
fixed `threads` the candidates are the same on any number of ranks; rank 0 alone writes the
files, and a search resumes on another number of ranks.

Example::

    summary = run_search(SearchRun(supernet="runs/supernet", output="runs/search",
                                   method="random", budget=500))
    summary["best"]["log_loss"]
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Callable, Optional

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
        eval_rows=run.eval_rows, recalibration_batches=run.recalibration_batches,
        optimizer=trained.optimizer if optimizer == "auto" else optimizer,
        betas=tuple(trained.betas), precision=trained.precision)  # type: ignore[arg-type]
    return loaded, SubnetScorer(loaded.model, loaded.data, loaded.embedding_cap, config)


def run_search(run: SearchRun, source: str = "search") -> dict[str, Any]:
    """Run (or, with `run.resume`, continue) a search; returns the summary (`search.json`).

    Under torchrun (or in a multi-rank pipeline) every rank loads its own copy of the
    supernet and scores its share of each generation; rank 0 alone writes the files.
    """
    from nasrec_torchrec.train.ranks import job_group

    run.validate(source)
    with job_group(run.threads):
        return _search(run)


def score_over_ranks(scorer: Any) -> Optional[Callable[[list[Any]], list[dict[str, Any]]]]:
    """A strategy's `score_many` spreading a generation's candidates over the ranks (each
    scores its share with `scorer`, every rank gets every result), or None on one rank."""
    from nasrec_torchrec.train.ranks import spread_over_ranks, world_size

    if world_size() == 1:
        return None
    return lambda architectures: spread_over_ranks(
        architectures, lambda share: [scorer.score(architecture) for architecture in share])


def _search(run: SearchRun) -> dict[str, Any]:
    from nasrec_torchrec.train.ranks import on_main_rank, rank, world_size

    main = rank() == 0
    outputs = SearchOutputs(run.output)
    on_main_rank(lambda: outputs.check(run))
    started = time.perf_counter()
    loaded, scorer = load_scorer(run, run.finetune)
    load_seconds = time.perf_counter() - started
    on_main_rank(lambda: outputs.start(run))
    space = loaded.supernet.space
    settings = asdict(run)

    def cost(architecture: Any) -> float:
        return scorer.cost(architecture).mflops

    search = SEARCH_STRATEGIES[run.method].from_settings(
        space, scorer.score, settings, seed=run.seed, budget=run.budget, cost=cost,
        max_mflops=run.max_mflops, state_path=outputs.state_path if main else None,
        on_candidate=outputs.append_candidate if main else None,
        score_many=score_over_ranks(scorer))
    if run.resume:
        state = on_main_rank(lambda: outputs.resume(search) and search.state_dict())
        if state and not main:
            search.load_state_dict(state, source=outputs.state_path)
    search_started = time.perf_counter()
    search.run(progress=run.progress and main)
    search_seconds = time.perf_counter() - search_started
    supernet = {"run_dir": loaded.run_dir, "checkpoint": loaded.checkpoint, "step": loaded.step,
                "space": space.name, "data": loaded.data, "embedding_cap": loaded.embedding_cap}
    return on_main_rank(lambda: outputs.write_results(
        search, settings, scorer.config.to_dict(), supernet,
        {"load_seconds": load_seconds, "search_seconds_this_run": search_seconds,
         "ranks": world_size()}))
