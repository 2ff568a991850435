"""Train one model: a found architecture (NASRecNet from JSON) or a baseline.

Capped tables by default (--embedding-cap, 500000); --full-tables for the final model.
Embeddings are sharded and trained with fused Adagrad; dense weights with Adagrad; cosine
learning-rate schedule. Writes metrics.jsonl, config.json, checkpoints/ and results.json
(validation log loss and AUC, samples/s).

Examples:
  nasrec train --data data/criteo --arch specs/arch/best.json --output runs/best
  nasrec train --data data/criteo --arch best.json --full-tables --output runs/final
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli train --data data/criteo \\
      --arch best.json --output runs/best --resume
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec train`."""
    from nasrec_torchrec.train.options import (add_early_stopping_arguments,
                                               add_network_arguments, add_train_arguments)

    model = parser.add_mutually_exclusive_group()
    model.add_argument("--arch", metavar="FILE.json",
                       help="architecture JSON (this project's format or the official one)")
    model.add_argument("--model", metavar="NAME", help="a baseline model by name")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a baseline option (repeatable), e.g. dropout=0.2 or "
                        "layer_sizes=400-400-400; typed by the model's dataclass of defaults")
    add_network_arguments(parser)
    add_train_arguments(parser)
    add_early_stopping_arguments(parser)


def load_architecture(path: str) -> Any:
    """An `Architecture` from a JSON file in this project's format or the official one."""
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.space import Architecture, load_official

    try:
        with open(path) as handle:
            data = json.load(handle)
    except OSError as error:
        raise NASRecError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
    if isinstance(data, dict) and "blocks" in data:
        return Architecture.from_dict(data, source=path)
    architecture, _ = load_official(path)
    return architecture


def build_body(args: argparse.Namespace, config: Any, schema: Any) -> Any:
    """The model body named by --arch or --model."""
    from nasrec_torchrec.errors import NASRecError

    dense, sparse = len(schema.dense), len(schema.sparse)
    if args.arch:
        from nasrec_torchrec.nn.networks import NASRecNet

        return NASRecNet(load_architecture(args.arch), dense, sparse,
                         embedding_dim=config.embedding_dim,
                         layer_norm=config.extra["layer_norm"],
                         dropout=float(config.extra.get("dropout", 0.0)))
    try:
        from nasrec_torchrec.baselines import get_baseline  # type: ignore[attr-defined]
    except ImportError:
        raise NASRecError(f"--model {args.model}: no baselines are available yet; "
                          "use --arch FILE.json") from None
    from nasrec_torchrec.baselines.options import parse_key_values

    options = parse_key_values(getattr(args, "model_option", None) or [])
    return get_baseline(args.model, dense, sparse, config.embedding_dim, **options)


def run(args: argparse.Namespace) -> int:
    """Train the model; print the validation metrics."""
    import torch

    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.options import config_from_args
    from nasrec_torchrec.train.trainer import Trainer, make_loaders

    if not args.arch and not args.model:
        raise NASRecError("train: give --arch FILE.json or --model NAME")
    if args.model and args.dropout:
        raise NASRecError("train: --dropout is for --arch; a baseline takes "
                          "--model-option dropout=P")
    config = config_from_args(args, {})
    config.extra = {**config.extra, "kind": "architecture" if args.arch else "baseline",
                    "arch": args.arch, "model": args.model,
                    "model_options": list(getattr(args, "model_option", None) or []),
                    "layer_norm": not args.no_layer_norm, "dropout": args.dropout}
    if args.arch:
        load_architecture(args.arch)  # fail on a bad file before starting ranks
    if not config.data or not config.output:
        raise NASRecError("train: --data and --output are required")

    context = init_distributed(config.device, config.threads)
    try:
        train_loader, eval_loader = make_loaders(config, context)
        torch.manual_seed(config.seed)
        body = build_body(args, config, train_loader.schema)
        results = Trainer(config, context, body, train_loader, eval_loader).fit()
    finally:
        teardown(context)
    if context.is_main and config.eval_split in results:
        metrics = results[config.eval_split]
        print(f"{config.output}: {results['steps']} steps, {config.eval_split} log loss "
              f"{metrics['log_loss']:.5f}, AUC {metrics['auc']:.5f}, "
              f"{results['samples_per_second'] or 0:,.0f} samples/s")
    return 0
