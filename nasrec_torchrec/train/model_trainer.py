"""The `Trainer` of one run config: the body its `model` describes on its data, seeded as
`nasrec train` seeds it (used by retrain, final, the baselines and the runs trained in a
fresh process)."""

from __future__ import annotations

from typing import Any

from nasrec_torchrec.train.config import TrainConfig


def model_trainer(config: TrainConfig, context: Any, eval_loader: Any = "default",
                  callbacks: tuple = ()) -> Any:
    """A `Trainer` of the body `config.model` describes (a `NASRecNet` with its LayerNorm and
    dropout, or a baseline) on `config.data`, seeded as `nasrec train`.

    `context`: a `DistributedContext`. `eval_loader="default"` evaluates `config.eval_split`
    at the end; None evaluates nothing.
    """
    import torch

    from nasrec_torchrec.model_spec import build_body
    from nasrec_torchrec.train.trainer import Trainer, make_loaders

    train_loader, default_eval = make_loaders(config, context)
    torch.manual_seed(config.seed)
    schema = train_loader.schema
    body = build_body(config.model, len(schema.dense), len(schema.sparse),
                      config.embedding_dim)
    return Trainer(config, context, body, train_loader,
                   default_eval if eval_loader == "default" else eval_loader,
                   callbacks=callbacks)
