"""Train a weight-sharing supernet over a search space: a new path every step.

Every rank draws the same path (a generator seeded by --seed); during the first
--path-warmup fraction of the steps the full path is trained with a probability decaying
linearly from 1 to 0 (the paper's warm-up). Embeddings are sharded and trained with fused
Adagrad; dense weights with Adagrad; cosine learning-rate schedule. Writes metrics.jsonl,
config.json, checkpoints/ and results.json (validation log loss and AUC of the full path).

Examples:
  nasrec train-supernet --data data/criteo --space nasrec-small --output runs/supernet
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli train-supernet --data data/criteo \\
      --space nasrec-full --output runs/supernet --checkpoint-every 1000
  nasrec train-supernet --data data/criteo --space nasrec-full --output runs/supernet --resume
"""

from __future__ import annotations

import argparse
import logging
import random

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec train-supernet`."""
    from nasrec_torchrec.space import STRATEGIES
    from nasrec_torchrec.train.options import add_network_arguments, add_train_arguments

    parser.add_argument("--space", help="search space preset (e.g. nasrec-small, nasrec-full)")
    parser.add_argument("--strategy", choices=sorted(STRATEGIES),
                        help="path sampling strategy (default single_op_any_conn)")
    parser.add_argument("--path-warmup", type=float, metavar="FRACTION",
                        help="full-path warm-up over this fraction of the steps (default 0.25)")
    add_network_arguments(parser, dropout=False)
    add_train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Train the supernet; print the validation metrics."""
    import torch

    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.nn.networks import Supernet
    from nasrec_torchrec.space import PathSampler, WarmupSchedule, get_space, sample_full
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.options import config_from_args
    from nasrec_torchrec.train.trainer import Trainer, make_loaders, planned_steps

    config = config_from_args(args, {})
    extra = config.extra
    space_name = args.space or extra.get("space")
    if not space_name:
        raise NASRecError("train-supernet: --space is required (e.g. nasrec-small)")
    strategy = args.strategy or extra.get("strategy", "single_op_any_conn")
    path_warmup = args.path_warmup if args.path_warmup is not None \
        else float(extra.get("path_warmup", 0.25))
    layer_norm = not args.no_layer_norm and bool(extra.get("layer_norm", True))
    config.extra = {**extra, "kind": "supernet", "space": space_name, "strategy": strategy,
                    "path_warmup": path_warmup, "layer_norm": layer_norm}
    if not config.data or not config.output:
        raise NASRecError("train-supernet: --data and --output are required")
    space = get_space(space_name)

    context = init_distributed(config.device, config.threads)
    try:
        train_loader, eval_loader = make_loaders(config, context)
        schema = train_loader.schema
        torch.manual_seed(config.seed)
        supernet = Supernet(space, len(schema.dense), len(schema.sparse),
                            embedding_dim=config.embedding_dim, layer_norm=layer_norm)
        total_steps = planned_steps(config, len(train_loader))
        sampler = PathSampler(
            space, strategy, seed=config.seed,
            warmup=WarmupSchedule(total_steps, path_warmup) if path_warmup else None)
        trainer = Trainer(config, context, supernet, train_loader, eval_loader,
                          path_sampler=sampler,
                          eval_architecture=sample_full(space, random.Random(config.seed)))
        results = trainer.fit()
    finally:
        teardown(context)
    if context.is_main and config.eval_split in results:
        metrics = results[config.eval_split]
        print(f"{config.output}: supernet ({space_name}, {strategy}) {results['steps']} steps, "
              f"{config.eval_split} log loss {metrics['log_loss']:.5f}, AUC {metrics['auc']:.5f} "
              f"(full path), {results['samples_per_second'] or 0:,.0f} samples/s")
    return 0
