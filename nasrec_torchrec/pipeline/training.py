"""Shared by retrain and final: architecture files, train configs and trainers of a found
architecture, and the candidates a search wrote."""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture

ARCHITECTURE_FILE = "architecture.json"


def write_architecture(path: str, architecture: Architecture) -> str:
    """Write `architecture` in the project's JSON format (atomically); returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        handle.write(architecture.to_json(indent=2) + "\n")
    os.replace(path + ".tmp", path)
    return path


def write_json(path: str, data: Any) -> None:
    """JSON written under a temporary name and renamed when complete."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(path + ".tmp", path)


def read_json(path: str) -> Any:
    """A JSON file, with faults as `NASRecError` naming the file."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise NASRecError(f"{path}: not found") from None
    except json.JSONDecodeError as error:
        raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None


def load_candidates(path: str) -> list[dict[str, Any]]:
    """The records of a search's `candidates.jsonl` (one JSON object per line)."""
    records = []
    try:
        with open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise NASRecError(f"{path}:{number}: invalid JSON: {error.msg}") from None
                if "architecture" not in record or "loss" not in record:
                    raise NASRecError(f"{path}:{number}: a candidate needs 'architecture' and "
                                      "'loss'")
                record["_line"] = number
                records.append(record)
    except FileNotFoundError:
        raise NASRecError(f"{path}: not found: is this a `nasrec search` output?") from None
    return records


def top_candidates(records: list[dict[str, Any]], k: int, source: str = "candidates"
                   ) -> list[tuple[dict[str, Any], Architecture]]:
    """The `k` best distinct candidates by loss (validation log loss), best first.

    Candidates with a missing or non-finite loss are left out; two candidates with the same
    canonical architecture count once (the first, better one is kept); ties keep search order.
    """
    if k < 1:
        raise NASRecError(f"--top-k must be at least 1, got {k}")
    scored = []
    for record in records:
        try:
            loss = float(record["loss"])
        except (TypeError, ValueError):
            continue
        if math.isfinite(loss):
            scored.append((loss, record["_line"], record))
    scored.sort(key=lambda item: (item[0], item[1]))
    chosen: list[tuple[dict[str, Any], Architecture]] = []
    seen: set[Architecture] = set()
    for _, line, record in scored:
        architecture = Architecture.from_dict(record["architecture"], source=f"{source}:{line}")
        key = architecture.canonical()
        if key in seen:
            continue
        seen.add(key)
        chosen.append((record, architecture))
        if len(chosen) == k:
            break
    if not chosen:
        raise NASRecError(f"{source}: no candidate with a finite loss")
    return chosen


def architecture_trainer(config: Any, context: Any, architecture: Architecture,
                         layer_norm: bool, eval_loader: Any = "default",
                         callbacks: tuple = (), dropout: float = 0.0) -> Any:
    """A `Trainer` of `architecture`'s `NASRecNet` on `config.data` (seeded as `nasrec train`).

    `eval_loader="default"` evaluates `config.eval_split` at the end; None evaluates nothing.
    """
    import torch

    from nasrec_torchrec.nn.networks import NASRecNet
    from nasrec_torchrec.train.trainer import Trainer, make_loaders

    train_loader, default_eval = make_loaders(config, context)
    torch.manual_seed(config.seed)
    schema = train_loader.schema
    body = NASRecNet(architecture, len(schema.dense), len(schema.sparse),
                     embedding_dim=config.embedding_dim, layer_norm=layer_norm,
                     dropout=dropout)
    return Trainer(config, context, body, train_loader,
                   default_eval if eval_loader == "default" else eval_loader,
                   callbacks=callbacks)


def run_config(base: Any, output: str, extra: dict[str, Any], **changes: Any) -> Any:
    """A copy of the `TrainConfig` `base` for one run in `output`."""
    config = copy.deepcopy(base)
    config.output = output
    for name, value in changes.items():
        setattr(config, name, value)
    config.extra = {**base.extra, **extra}
    return config


def dense_and_embedding_params(architecture: Architecture, schema: Any, embedding_dim: int,
                               embedding_cap: Optional[int], layer_norm: bool) -> dict[str, Any]:
    """FLOPs per sample (fvcore) and parameters (dense, embedding, total) of a model."""
    from nasrec_torchrec.analysis.flops import FLOPS_CONVENTION, architecture_cost

    cost = architecture_cost(architecture, len(schema.dense), len(schema.sparse),
                             embedding_dim, layer_norm)
    embedding = sum(schema.table_rows(name, embedding_cap) for name in schema.sparse_names) \
        * embedding_dim
    return {"flops": cost.flops, "mflops": cost.mflops, "dense_params": cost.params,
            "embedding_params": embedding, "params": cost.params + embedding,
            "flops_convention": FLOPS_CONVENTION}
