"""Score a trained model directory (written by `nasrec train`, `retrain` or `final`) on a split.

The directory's `config.json` gives the model (an architecture, from its `architecture.json`
or the recorded file, or a baseline by name with its options), the embedding width and the
table cap; `results.json` may name the checkpoint to use (`final` keeps the best one),
otherwise the latest under `checkpoints/` is loaded. The checkpoint is read into a plain,
unsharded model in this process (DCP reshards whatever plan saved it); no process group is
needed. The split may belong to another prepared dataset with the same vocabularies (e.g. a
test set prepared later with `nasrec prepare --schema-from`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.artifacts import (CHECKPOINT_DIR, CONFIG_FILE, RESULTS_FILE, read_json,
                                       write_json)

logger = logging.getLogger(__name__)


@dataclass
class EvaluateRun:
    """Scoring a trained model directory on a prepared split."""

    model: str = option("", "a trained model directory (train / retrain candidate / final)",
                        metavar="DIR")
    data: Optional[str] = option(None, "prepared dataset (default: the one the model trained "
                                 "on)", metavar="DIR")
    split: Optional[str] = option(None, "split scored (default: test if present, else val)")
    checkpoint: Optional[str] = option(None, "a step_* checkpoint (default: the model's chosen "
                                       "or latest)", metavar="DIR")
    batch_size: Optional[int] = option(None, "rows per evaluation batch (default: the run's)",
                                       minimum=1)
    threads: Optional[int] = option(None, "intra-op threads", minimum=1)


def evaluate(run: EvaluateRun, source: str = "evaluate") -> dict[str, Any]:
    """Score `run.model`; see `evaluate_model` for the result."""
    from nasrec_torchrec.train.distributed import set_threads

    check(run, source)
    if not run.model:
        raise NASRecError(f"{source}: field 'model' (--model): is required")
    set_threads(run.threads, 1)
    return evaluate_model(run.model, run.data, run.split, run.batch_size, run.checkpoint)


def evaluation_file(split: str) -> str:
    """`evaluation_<split>.json`."""
    return f"evaluation_{split}.json"


def model_checkpoint(model_dir: str) -> str:
    """The checkpoint a model directory's results name, else its latest one."""
    from nasrec_torchrec.train.checkpoint import latest_checkpoint

    results_path = os.path.join(model_dir, RESULTS_FILE)
    if os.path.exists(results_path):
        named = read_json(results_path).get("checkpoint")
        if named:
            path = named if os.path.isabs(named) else os.path.join(model_dir, named)
            if os.path.isdir(path):
                return path
    latest = latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR))
    if latest is None:
        raise NASRecError(f"{model_dir}: no checkpoint under {CHECKPOINT_DIR}/")
    return latest


def model_config(model_dir: str) -> Any:
    """The `TrainConfig` a model directory was trained with (its `config.json`)."""
    from nasrec_torchrec.train.config import TrainConfig

    path = os.path.join(model_dir, CONFIG_FILE)
    data = read_json(path)
    if "config" not in data:
        raise NASRecError(f"{path}: field 'config': missing: not a training run directory")
    return TrainConfig.from_dict(data["config"], source=path)


def build_model_body(model_dir: str, config: Any, schema: Any) -> Any:
    """The body (NASRecNet or baseline) of a trained model directory."""
    from nasrec_torchrec.model_spec import build_body, run_model_spec

    spec = run_model_spec(config, os.path.join(model_dir, CONFIG_FILE))
    if spec.kind == "supernet":
        raise NASRecError(f"{model_dir}: a supernet run; score its subnets with `nasrec search`")
    return build_body(spec, len(schema.dense), len(schema.sparse), config.embedding_dim,
                      source=os.path.join(model_dir, CONFIG_FILE))


def training_data(config: Any) -> str:
    """The prepared dataset a run trained on (not the train+val view of a final run)."""
    return config.source_data or config.extra.get("source_data") or config.data


def check_compatible(data: str, trained_on: Optional[str], embedding_cap: Optional[int]) -> None:
    """Raise when `data`'s features or table sizes differ from those the model trained on."""
    from nasrec_torchrec.data.schema import Schema

    schema = Schema.load(data)
    if not trained_on or not os.path.exists(os.path.join(trained_on, "schema.json")):
        return
    reference = Schema.load(trained_on)
    if list(schema.dense) != list(reference.dense):
        raise NASRecError(f"{data}: dense features {list(schema.dense)} differ from the "
                          f"model's {list(reference.dense)}")
    if schema.sparse_names != reference.sparse_names:
        raise NASRecError(f"{data}: sparse features differ from the model's")
    for name in schema.sparse_names:
        mine, theirs = (schema.table_rows(name, embedding_cap),
                        reference.table_rows(name, embedding_cap))
        if mine != theirs:
            raise NASRecError(f"{data}: feature '{name}' has {mine} table rows, the model "
                              f"{theirs}: prepare it with --schema-from the training data")


def load_trained_model(model_dir: str, data: Optional[str] = None,
                       checkpoint: Optional[str] = None) -> tuple[Any, Any, str, int]:
    """(`NASRecModelTrain` in eval mode, `TrainConfig`, checkpoint path, step)."""
    from nasrec_torchrec.data.schema import Schema
    from nasrec_torchrec.embeddings import build_embedding_bag_collection
    from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
    from nasrec_torchrec.train.checkpoint import load_checkpoint

    config = model_config(model_dir)
    trained_on = training_data(config)
    data = data or trained_on
    check_compatible(data, trained_on, config.embedding_cap)
    schema = Schema.load(data)
    checkpoint = checkpoint or model_checkpoint(model_dir)
    ebc = build_embedding_bag_collection(schema, config.embedding_dim, config.embedding_cap,
                                         device="cpu")
    body = build_model_body(model_dir, config, schema)
    wrapper = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), body))
    state = load_checkpoint(checkpoint, wrapper)
    wrapper.eval()
    return wrapper, config, checkpoint, int(state["step"])


@dataclass
class TrainedModel:
    """A trained run loaded for the user's own code (`nasrec_torchrec.load_model`).

    Args:
        model: the `NASRecModel` (found architecture or baseline body), in eval mode,
            unsharded: `model(dense_features [B, Dn], sparse_features KJT) -> logits [B]`.
        schema: the `Schema` of the prepared data it trained on (features, vocabularies).
        embedding_cap: its tables' row cap (None: full tables); the KJT's ids are table rows,
            `data.schema.table_row(full_vocabulary_rows, schema.table_rows(name, cap))`.
        data: the prepared dataset it trained on (its `vocab/` maps raw tokens to rows).
        checkpoint: the checkpoint loaded; step: its training step.

    Example::

        trained = load_model("runs/final")
        loader = ParquetBatchLoader(trained.data, "test", 1024,
                                    embedding_cap=trained.embedding_cap)
        logits = trained.model(batch.dense_features, batch.sparse_features)  # [B]
        # sharded again: DMP initialises its tables itself, so copy them in
        tables = trained.embedding_tables()
        dmp = DistributedModelParallel(NASRecModelTrain(trained.model), device=device)
        embeddings.load_embedding_tables(dmp, tables)
    """

    model: Any
    schema: Any
    embedding_cap: Optional[int]
    data: str
    checkpoint: str
    step: int

    def embedding_tables(self) -> dict[str, Any]:
        """A copy of every table's weight `[rows, E]` by table name (`t_<feature>`), for
        `embeddings.load_embedding_tables(dmp, tables)` once the model is sharded again."""
        bags = self.model.embedding_bag_collection.embedding_bags
        return {name: bag.weight.detach().clone() for name, bag in bags.items()}


def load_model(model_dir: str, device: Any = "cpu",
               checkpoint: Optional[str] = None) -> TrainedModel:
    """The trained model of a run directory of `nasrec train` / `retrain` / `final`, on
    `device`, with the schema of its data; `checkpoint`: a `step_*` directory (default: the
    one `results.json` names, else the latest). A supernet run is refused."""
    from nasrec_torchrec.data.schema import Schema

    wrapper, config, checkpoint, step = load_trained_model(model_dir, checkpoint=checkpoint)
    data = training_data(config)
    return TrainedModel(wrapper.model.to(device), Schema.load(data), config.embedding_cap,
                        data, checkpoint, step)


def default_split(data: str) -> str:
    """`test` when the dataset has one with rows, else `val`."""
    from nasrec_torchrec.stages.combined import has_split

    return "test" if has_split(data, "test") else "val"


def evaluate_model(model_dir: str, data: Optional[str] = None, split: Optional[str] = None,
                   batch_size: Optional[int] = None, checkpoint: Optional[str] = None,
                   write: bool = True) -> dict[str, Any]:
    """Log loss and AUC of the model in `model_dir` on `split` of `data`.

    Args:
        model_dir: a run directory of `nasrec train` / `retrain` / `final`.
        data: a prepared dataset (default: the one the model trained on).
        split: the split scored (default: test if the dataset has one, else val).
        batch_size: rows per evaluation batch (default: the run's eval batch size).
        checkpoint: a `step_*` directory (default: the one `results.json` names, else the
            latest).
        write: write `model_dir/evaluation_<split>.json`.

    Returns:
        `{"split", "data", "checkpoint", "step", "metrics": {"log_loss", "auc", "rows",
        "positive_rate"}, "seconds"}`.
    """
    import torch

    from nasrec_torchrec.data.loader import ParquetBatchLoader
    from nasrec_torchrec.train.metrics import evaluate

    started = time.perf_counter()
    wrapper, config, checkpoint, step = load_trained_model(model_dir, data, checkpoint)
    data = data or training_data(config)
    split = split or default_split(data)
    loader = ParquetBatchLoader(data, split, batch_size or config.eval_batch_size,
                                embedding_cap=config.embedding_cap, shuffle=False,
                                drop_last=False).require_rows("the evaluation (--split)")
    with torch.no_grad():
        metrics = evaluate(wrapper, loader, torch.device("cpu"))
    result = {"model": os.path.abspath(model_dir), "split": split, "data": os.path.abspath(data),
              "checkpoint": checkpoint, "step": step, "metrics": metrics,
              "seconds": time.perf_counter() - started}
    if write:
        write_json(os.path.join(model_dir, evaluation_file(split)), result)
    logger.info("%s on %s/%s: log loss %.5f, AUC %.5f over %d rows", model_dir, data, split,
                metrics["log_loss"], metrics["auc"], metrics["rows"])
    return result
