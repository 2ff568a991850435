"""Shared by retrain and final: architecture files, the train configs and costs of a found
architecture, and the candidates a search wrote (their trainer: `train.model_trainer`)."""

from __future__ import annotations

import copy
import math
import os
from typing import Any, Optional

from nasrec_torchrec.artifacts import iter_jsonl, write_text
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.space.validation import validate_structure


def write_architecture(path: str, architecture: Architecture) -> str:
    """Write `architecture` in the project's JSON format (atomically); returns the path."""
    return write_text(path, architecture.to_json(indent=2) + "\n")


def load_candidates(path: str) -> list[dict[str, Any]]:
    """The records of a search's `candidates.jsonl` (one JSON object per line)."""
    if not os.path.exists(path):
        raise NASRecError(f"{path}: not found: is this a `nasrec search` output?")
    records = []
    for number, record in iter_jsonl(path):
        if not isinstance(record, dict) or "architecture" not in record or "loss" not in record:
            raise NASRecError(f"{path}:{number}: a candidate needs 'architecture' and 'loss'")
        record["_line"] = number
        records.append(record)
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
        validate_structure(architecture, f"{source}:{line}")
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


def run_config(base: Any, output: str, model: ModelSpec, notes: dict[str, Any],
               **changes: Any) -> Any:
    """A copy of the `TrainConfig` `base` for one run of `model` in `output`."""
    config = copy.deepcopy(base)
    config.output = output
    config.model = model
    config.notes = {**base.notes, **notes}
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def model_name(model: ModelSpec) -> str:
    """How a leaderboard names a model: the baseline's name, or "found architecture"."""
    if model.kind == "baseline" and model.baseline:
        return model.baseline
    return "found architecture"


def model_cost(model: ModelSpec, schema: Any, embedding_dim: int,
               embedding_cap: Optional[int]) -> dict[str, Any]:
    """FLOPs per sample (fvcore) and parameters (dense, embedding, total) of a model."""
    from nasrec_torchrec.analysis.flops import (FLOPS_CONVENTION, ModelCost, architecture_cost,
                                                count_flops)

    dense, sparse = len(schema.dense), len(schema.sparse)
    if model.kind == "architecture" and not model.batch_norm:
        cost = architecture_cost(model.found_architecture(), dense, sparse, embedding_dim,
                                 model.layer_norm)
    else:
        import torch

        from nasrec_torchrec.model_spec import build_body

        with torch.random.fork_rng():  # building the body must not move the caller's RNG
            body = build_body(model, dense, sparse, embedding_dim)
        cost = ModelCost(flops=count_flops(body, dense, sparse, embedding_dim),
                         params=sum(p.numel() for p in body.parameters()))
    embedding = sum(schema.table_rows(name, embedding_cap) for name in schema.sparse_names) \
        * embedding_dim
    return {"flops": cost.flops, "mflops": cost.mflops, "dense_params": cost.params,
            "embedding_params": embedding, "params": cost.params + embedding,
            "flops_convention": FLOPS_CONVENTION}
