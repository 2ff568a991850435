"""How the ranking study trains a subnet from scratch, and when a finished run is reused.

Two ways of training (`ScratchTraining`): a short fixed budget (`steps` of Adagrad at
`learning_rate`, the supernet's batch size, table cap and clipping), or a whole recipe
(`recipe`, a `TrainConfig` as `nasrec train --config` reads it: optimizer, rates, batch size,
epochs, early stopping, table init, weight decays, clipping, full tables or a cap). Either way
the study sets the data, the run directory, the model (the subnet with the supernet's
LayerNorm, `batch_norm`, `dropout`) and the device (the CPU; `threads`), and keeps no
checkpoint but an early-stopped run's best epoch.

A finished run (its `results.json`) is reused only when it was trained with every setting
that changes results (`settings.changed_settings`) as the one asked for now: the whole recipe,
the data and the model.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import asdict, dataclass
from typing import Any, Optional

from nasrec_torchrec.artifacts import RESULTS_FILE, read_json
from nasrec_torchrec.model_spec import ModelSpec, run_model_spec
from nasrec_torchrec.settings import changed_settings
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.train.config import TrainConfig

BUDGET_FIELDS = ("steps", "batch_size", "learning_rate", "embedding_cap", "clip_grad_norm",
                 "seed", "eval_batch_size")
"""The fixed budget's settings; a recipe's own fields replace them."""


@dataclass
class ScratchTraining:
    """How each subnet is trained from scratch (the project's `Trainer`).

    Args:
        steps: training steps (fixed budget).
        batch_size: global rows per step (fixed budget).
        learning_rate: dense and embedding Adagrad rate, cosine schedule (fixed budget).
        embedding_cap: table cap (fixed budget; use the supernet's).
        layer_norm: LayerNorm in the operators (use the supernet's).
        clip_grad_norm: clip the dense gradients' global L2 norm to this (fixed budget; use
            the supernet's; None: no clipping).
        seed: seeds init and data order, the same for every subnet (fixed budget).
        eval_batch_size: rows per evaluation batch (fixed budget).
        threads: intra-op threads.
        recipe: a whole training recipe instead of the fixed budget (its `data`, `output`,
            `model`, device and checkpointing are set per subnet).
        batch_norm: BatchNorm instead of LayerNorm on the subnet's dense operators.
        dropout: dropout on every block's dense output while training.
        seeds: each subnet is trained this many times, with the seed (the recipe's, with a
            recipe) and the next ones (`seed_settings`); its figures are then the means.
    """

    steps: int = 1000
    batch_size: int = 256
    learning_rate: float = 0.04
    embedding_cap: Optional[int] = None
    layer_norm: bool = True
    clip_grad_norm: Optional[float] = None
    seed: int = 0
    eval_batch_size: int = 4096
    threads: Optional[int] = None
    recipe: Optional[TrainConfig] = None
    batch_norm: bool = False
    dropout: float = 0.0
    seeds: int = 1

    @property
    def run_seed(self) -> int:
        """The seed a run trains with: the recipe's, or the fixed budget's."""
        return self.recipe.seed if self.recipe is not None else self.seed

    @property
    def asks_for_recipe(self) -> bool:
        """Whether a recipe or a model setting beyond the supernet's was asked for."""
        return self.recipe is not None or self.batch_norm or self.dropout > 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with a recipe: the recipe, without the fixed budget's fields)."""
        record = asdict(self)
        if self.recipe is not None:
            for name in BUDGET_FIELDS:
                del record[name]
        return record


def seed_settings(settings: ScratchTraining, offset: int) -> ScratchTraining:
    """`settings` for a subnet's run `offset` (0 ... seeds-1): the seed (the recipe's seed
    with a recipe) plus `offset`."""
    if settings.recipe is None:
        return dataclasses.replace(settings, seed=settings.seed + offset)
    return dataclasses.replace(settings, recipe=dataclasses.replace(
        settings.recipe, seed=settings.recipe.seed + offset))


def scratch_config(architecture: Architecture, data: str, output: str,
                   settings: ScratchTraining) -> TrainConfig:
    """The `TrainConfig` of training `architecture` from scratch in the run directory
    `output` (metrics.jsonl, results.json; no checkpoints but an early-stopped run's best)."""
    model = ModelSpec.for_architecture(architecture, settings.layer_norm, settings.dropout,
                                       batch_norm=settings.batch_norm)
    if settings.recipe is None:
        return TrainConfig(
            data=data, output=output, batch_size=settings.batch_size,
            eval_batch_size=settings.eval_batch_size, max_steps=settings.steps,
            learning_rate=settings.learning_rate,
            embedding_learning_rate=settings.learning_rate,
            embedding_cap=settings.embedding_cap, clip_grad_norm=settings.clip_grad_norm,
            seed=settings.seed, device="cpu",
            threads=settings.threads, checkpoint_every=0, progress_bar=False, overwrite=True,
            log_every=max(1, min(50, settings.steps)), model=model,
            notes={"stage": "rank_study"})
    config = copy.deepcopy(settings.recipe)
    config.data, config.output, config.model = data, output, model
    config.device, config.threads, config.progress_bar = "cpu", settings.threads, False
    config.checkpoint_every, config.resume, config.overwrite = 0, False, True
    config.notes = {**config.notes, "stage": "rank_study"}
    return config


def train_from_scratch(architecture: Architecture, data: str, output: str,
                       settings: ScratchTraining, context: Any) -> dict[str, Any]:
    """Train `architecture` from scratch with the project's trainer; its `results.json` dict.

    Args:
        architecture: the subnet.
        data: prepared dataset.
        output: the run directory (metrics.jsonl, results.json).
        settings: `ScratchTraining`.
        context: a `DistributedContext` (from `init_distributed`).
    """
    from nasrec_torchrec.train.model_trainer import model_trainer

    return model_trainer(scratch_config(architecture, data, output, settings), context).fit()


def scratch_run_changes(architecture: Architecture, data: str, output: str,
                        settings: ScratchTraining
                        ) -> tuple[Optional[dict[str, Any]], list[str]]:
    """The `results.json` dict of the finished from-scratch run in `output` (None when there
    is none) and the settings it was trained with that differ from training `architecture`
    on `data` with `settings` (one `"name (--flag): recorded -> now"` each; the model's
    fields as `model.<name>`)."""
    path = os.path.join(output, RESULTS_FILE)
    if not os.path.exists(path):
        return None, []
    results = read_json(path)
    recorded = dict(results.get("config") or {})
    spec = run_model_spec(TrainConfig.from_dict(recorded, source=path), path)
    expected = scratch_config(architecture, data, output, settings)
    changes = changed_settings(dataclasses.replace(expected, model=None),
                               {**recorded, "model": None})
    changes += changed_settings(expected.model, asdict(spec), "model.")
    return results, changes


def finished_scratch_run(architecture: Architecture, data: str, output: str,
                         settings: ScratchTraining) -> Optional[dict[str, Any]]:
    """The `results.json` dict of a finished from-scratch run of `architecture` in `output`
    trained with these settings (e.g. ahead by `train_subnets_from_scratch`), else None."""
    results, changes = scratch_run_changes(architecture, data, output, settings)
    return None if changes else results


def combine_seeds(per_seed: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """A subnet record's from-scratch fields over several seeds (`scratch_fields` of each
    run, in the order of `seeds`): the mean log loss and AUC (what the study correlates),
    each seed's, the first run's steps and best epoch, and the seconds of all of them."""
    combined = dict(per_seed[0])
    for name in ("log_loss", "auc"):
        values = [fields[f"scratch_{name}"] for fields in per_seed]
        combined[f"scratch_{name}_per_seed"] = values
        combined[f"scratch_{name}"] = None if None in values else sum(values) / len(values)
    combined["scratch_seeds"] = list(seeds)
    combined["scratch_seconds"] = sum(fields["scratch_seconds"] for fields in per_seed)
    return combined


def scratch_fields(results: dict[str, Any], split: str) -> dict[str, Any]:
    """A subnet record's from-scratch fields from a trainer's `results.json` dict (an
    early-stopped run's metrics are its best epoch's, which it names)."""
    metrics = results.get(split)
    fields = {"scratch_log_loss": metrics["log_loss"] if metrics else None,
              "scratch_auc": metrics["auc"] if metrics else None,
              "scratch_steps": results["steps"], "scratch_seconds": results["train_seconds"]}
    if "best_epoch" in results:
        fields["scratch_best_epoch"] = results["best_epoch"]
    return fields
