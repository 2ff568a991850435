"""Stage `train_model`: one model, a found architecture or a hand-made baseline.

Capped tables by default, full-size ones with `embedding_cap=None`. The run's `config.json`
records the architecture itself (or the baseline and its options), so `nasrec evaluate`
rebuilds the model from the run directory alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.train.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class ModelRun:
    """A training run of one model.

    Args:
        arch: an architecture JSON file (this project's format or the official one).
        model: a baseline's name (exclusive with `arch`).
        model_option: the baseline's `KEY=VALUE` options.
        layer_norm: LayerNorm in the operators of a found architecture.
        dropout: dropout on every block's dense output while training (found architectures).
        batch_norm: BatchNorm instead of LayerNorm on the dense operators (found architectures).
        train: the training settings.
    """

    arch: Optional[str] = option(None, "architecture JSON (this project's format or the "
                                 "official one)", metavar="FILE.json")
    model: Optional[str] = option(None, "a baseline model by name (dlrm, deepfm, autoint, "
                                  "xdeepfm, dcnv2, linear)", metavar="NAME")
    model_option: list[str] = option(
        default_factory=list, help="baseline options, e.g. dropout=0.2 layer_sizes=400-400-400; "
        "typed by the model's dataclass of defaults", metavar="KEY=VALUE")
    layer_norm: bool = option(True, "no LayerNorm in the operators")
    dropout: float = option(0.0, "found architectures: dropout on every block's dense output "
                            "while training (baselines: --model-option dropout=P)",
                            minimum=0.0, below=1.0, metavar="P")
    batch_norm: bool = option(False, "BatchNorm over the units of every dense operator instead "
                              "of LayerNorm (what the BARS recipe's tiny tables need)")
    train: TrainConfig = field(default_factory=TrainConfig)


def model_spec(run: ModelRun, source: str = "train") -> Any:
    """The `ModelSpec` of `run` (the architecture file read and checked)."""
    from nasrec_torchrec.model_spec import ModelSpec
    from nasrec_torchrec.space import load_architecture

    if bool(run.arch) == bool(run.model):
        raise NASRecError(f"{source}: give --arch FILE.json or --model NAME (one of them)")
    if run.model:
        if run.dropout:
            raise NASRecError(f"{source}: --dropout is for --arch; a baseline takes "
                              "--model-option dropout=P")
        if run.batch_norm:
            raise NASRecError(f"{source}: --batch-norm is for --arch; a baseline takes "
                              "--model-option batch_norm=true")
        from nasrec_torchrec.baselines import baseline_entry

        baseline_entry(run.model)  # an unknown name fails before any rank starts
        return ModelSpec.for_baseline(run.model, run.model_option)
    return ModelSpec.for_architecture(load_architecture(run.arch), run.layer_norm, run.dropout,
                                      source=run.arch, batch_norm=run.batch_norm)


def train_model(run: ModelRun, source: str = "train") -> dict[str, Any]:
    """Train the model of `run`; the content of its `results.json`."""
    import torch

    from nasrec_torchrec.model_spec import build_body
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.trainer import Trainer, make_loaders

    check(run, source)
    config = run.train
    config.model = model_spec(run, source)
    if not config.data or not config.output:
        raise NASRecError(f"{source}: --data and --output are required")
    context = init_distributed(config.device, config.threads)
    try:
        train_loader, eval_loader = make_loaders(config, context)
        torch.manual_seed(config.seed)
        schema = train_loader.schema
        body = build_body(config.model, len(schema.dense), len(schema.sparse),
                          config.embedding_dim)
        results = Trainer(config, context, body, train_loader, eval_loader).fit()
    finally:
        teardown(context)
    return results
