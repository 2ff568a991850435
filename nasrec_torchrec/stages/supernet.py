"""Stage `train_supernet`: a weight-sharing supernet over a search space, a new path a step.

Every rank draws the same path (a generator seeded by the run's seed); during the first
`path_warmup` fraction of the steps the full path is trained with a probability decaying
linearly from 1 to 0 (the paper's warm-up). The run's `config.json` records the whole search
space, so a space file need not exist when the supernet is searched later.

With an evaluation split, `probe_subnets` architectures drawn once from the space (a
generator seeded by the run's seed, apart from the training's) are scored with the
supernet's weights after every epoch (`train.probes`): one record per epoch in
`metrics.jsonl`, the probes in `probes.jsonl`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.train.config import TrainConfig

logger = logging.getLogger(__name__)


def _strategies() -> list[str]:
    from nasrec_torchrec.space import STRATEGIES

    return sorted(STRATEGIES)


@dataclass
class SupernetRun:
    """A supernet training run.

    Args:
        space: a preset's name or a search-space file (`specs/spaces/*.yaml`).
        strategy: the path sampling strategy.
        path_warmup: full-path warm-up over this fraction of the steps.
        layer_norm: LayerNorm in every operator.
        batch_norm: BatchNorm over the units of every dense operator instead of LayerNorm (the
            model the final recipe trains, `--batch-norm` of retrain / final); each probe is
            then scored after re-estimating its BatchNorm statistics on the first
            `probe_recalibration_batches` training batches.
        probe_recalibration_batches: those batches (of --batch-size rows).
        probe_subnets: architectures scored on the evaluation split after every epoch (0:
            none).
        probe_rows: the evaluation rows each probe is scored on (the first N; 0: all).
        train: the training settings (data, output, optimizer, steps...).
    """

    space: str = option("", "search space: a preset name (nasrec-small, nasrec-full, "
                        "nasrec-small-plus, nasrec-full-plus, official-small, official-full) "
                        "or a space file (.yaml/.json)",
                        metavar="NAME|FILE")
    strategy: str = option("single_op_any_conn", "path sampling strategy",
                           choices=_strategies)
    path_warmup: float = option(0.25, "full-path warm-up over this fraction of the steps",
                                minimum=0.0, below=1.0, metavar="FRACTION")
    layer_norm: bool = option(True, "no LayerNorm in the operators")
    batch_norm: bool = option(False, "BatchNorm over the units of every dense operator instead "
                              "of LayerNorm (as retrain/final --batch-norm train the found "
                              "models; search, rank-study and the probes then re-estimate each "
                              "subnet's BatchNorm statistics before scoring it); several "
                              "ranks: each rank's own batch statistics")
    probe_recalibration_batches: int = option(
        10, "with --batch-norm: training batches (the first N of the split, unshuffled) each "
        "probe subnet's BatchNorm statistics are re-estimated on before it is scored",
        minimum=1, metavar="N", fixed_on_resume=False)
    probe_subnets: int = option(
        4, "architectures drawn once from the space (seeded by --seed) and scored with the "
        "supernet's weights on the --eval-split rows after every epoch, one metrics.jsonl "
        "line per epoch, so that one sees whether the supernet has converged (0: none)",
        minimum=0, metavar="N", fixed_on_resume=False)
    probe_rows: int = option(20_000, "evaluation rows each probe subnet is scored on (the "
                             "first N of --eval-split; 0: all)", minimum=0, metavar="N",
                             fixed_on_resume=False)
    train: TrainConfig = field(default_factory=TrainConfig)


def train_supernet(run: SupernetRun, source: str = "train-supernet") -> dict[str, Any]:
    """Train the supernet of `run`; the content of its `results.json` (validation metrics of
    the full path under `run.train.eval_split`)."""
    import torch

    from nasrec_torchrec.model_spec import ModelSpec, build_body
    from nasrec_torchrec.space import (
        PathSampler, WarmupSchedule, load_space, sample_full, sample_probes)
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.probes import SupernetProbes, make_recalibration_loader
    from nasrec_torchrec.train.trainer import (
        Trainer, make_eval_loader, make_loaders, planned_steps)

    check(run, source)
    if not run.space:
        raise NASRecError(f"{source}: field 'space' (--space): is required (e.g. nasrec-small)")
    config = run.train
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --data and --output are required")
    space = load_space(run.space)
    config.model = ModelSpec.for_supernet(space, run.strategy, run.path_warmup, run.layer_norm,
                                          run.batch_norm)
    context = init_distributed(config.device, config.threads)
    try:
        train_loader, eval_loader = make_loaders(config, context)
        schema = train_loader.schema
        torch.manual_seed(config.seed)
        supernet = build_body(config.model, len(schema.dense), len(schema.sparse),
                              config.embedding_dim)
        total_steps = planned_steps(config, len(train_loader))
        sampler = PathSampler(
            space, run.strategy, seed=config.seed,
            warmup=WarmupSchedule(total_steps, run.path_warmup) if run.path_warmup else None)
        callbacks = []
        if run.probe_subnets and eval_loader is not None:
            callbacks.append(SupernetProbes(
                sample_probes(space, run.probe_subnets, config.seed),
                make_eval_loader(config, context, run.probe_rows or None), config.eval_split,
                recalibration=make_recalibration_loader(config, context,
                                                        run.probe_recalibration_batches)
                if run.batch_norm else None))
        trainer = Trainer(config, context, supernet, train_loader, eval_loader,
                          path_sampler=sampler,
                          eval_architecture=sample_full(space, random.Random(config.seed)),
                          callbacks=callbacks)
        results = trainer.fit()
    finally:
        teardown(context)
    if context.is_main and config.eval_split in results:
        metrics = results[config.eval_split]
        logger.info("%s: supernet (%s, %s) %d steps, %s log loss %.5f, AUC %.5f (full path), "
                    "%s samples/s", config.output, space.name, run.strategy, results["steps"],
                    config.eval_split, metrics["log_loss"], metrics["auc"],
                    f"{results['samples_per_second'] or 0:,.0f}")
    return results
