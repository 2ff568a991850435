"""How a training run shards its tables: the constraints or hand-written plan handed to
`embeddings.shard_model`.

- `adam` on CPU: every table data-parallel with the dense kernel (FBGEMM has no CPU Adam;
  torch Adam then updates the replicated tables); no sharding type can be forced.
- `sharding_type` "row_wise": a hand-written plan (the planner never proposes it on CPU).
- another `sharding_type`: every table constrained to it, with the fused kernel.
- otherwise: the planner's choice (`embeddings.default_constraints`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torchrec.distributed.planner.types import ParameterConstraints
from torchrec.distributed.types import ShardingPlan

from nasrec_torchrec.embeddings import manual_plan, table_name
from nasrec_torchrec.errors import NASRecError


def check_table_sharding(optimizer: str, sharding_type: Optional[str],
                         device: torch.device) -> None:
    """Refuse a forced sharding type that the optimizer's tables cannot take."""
    if optimizer == "adam" and device.type != "cuda" and sharding_type:
        raise NASRecError(f"--optimizer adam on CPU keeps the tables data-parallel (FBGEMM "
                          f"has no CPU Adam): --sharding-type {sharding_type} cannot apply")


def table_sharding(model: nn.Module, feature_names: Sequence[str], optimizer: str,
                   sharding_type: Optional[str], world_size: int, device: torch.device
                   ) -> tuple[Optional[dict[str, ParameterConstraints]], Optional[ShardingPlan]]:
    """`(constraints, plan)` for `shard_model`: at most one of them is not None.

    Args:
        model: the train model whose `EmbeddingBagCollection` holds one table per feature.
        feature_names: the sparse features (tables `embeddings.table_name(feature)`).
        optimizer: "adagrad" or "adam" (`TrainConfig.optimizer`).
        sharding_type: the forced sharding type, or None for the planner's choice.
        world_size: ranks in the job.
        device: this rank's compute device.

    Example::

        constraints, plan = table_sharding(model, schema.sparse_names, "adagrad",
                                           "table_wise", 2, torch.device("cpu"))
        dmp = shard_model(model, device, constraints=constraints, plan=plan)
    """
    if optimizer == "adam" and device.type != "cuda":
        return {table_name(name): ParameterConstraints(
            sharding_types=["data_parallel"], compute_kernels=["dense"])
            for name in feature_names}, None
    if sharding_type == "row_wise":
        return None, manual_plan(model, "row_wise", world_size, device)
    if sharding_type:
        return {table_name(name): ParameterConstraints(
            sharding_types=[sharding_type], compute_kernels=["fused"])
            for name in feature_names}, None
    return None, None
