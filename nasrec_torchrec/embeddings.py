"""Embedding tables from a schema (capped or full), sharded by `DistributedModelParallel`.

Capped (search) and full (final model) tables share every line of code here: only the row
counts differ, and they come from `Schema.table_rows`, which goes with the same id -> row rule
(`nasrec_torchrec.data.schema.table_row`) in both cases.

Tables are always trained through `DistributedModelParallel`, one process included (the fused
FBGEMM kernel updates a batch's rows inside the backward; no dense table gradient exists).
Tables are built on the meta device and allocated once, sharded, by the sharder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Callable, Iterator, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.optim import _apply_optimizer_in_backward
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
from torchrec.distributed.model_parallel import (
    DefaultDataParallelWrapper,
    DistributedModelParallel,
)
from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
from torchrec.distributed.planner.types import ParameterConstraints, PlannerError
from torchrec.distributed.embedding_types import EmbeddingComputeKernel
from torchrec.distributed.types import ModuleSharder, ShardingEnv, ShardingPlan, ShardingType
from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType
from torchrec.modules.embedding_modules import EmbeddingBagCollection

from nasrec_torchrec.data.schema import DEFAULT_EMBEDDING_CAP, Schema
from nasrec_torchrec.errors import NASRecError

logger = logging.getLogger(__name__)

TABLE_PREFIX = "t_"
DEFAULT_EMBEDDING_LR = 0.04
DEFAULT_ADAGRAD_EPS = 1e-8
# Rows per block of the sharding-independent initialisation (see `init_embedding_weights`).
_INIT_BLOCK_ROWS = 1 << 16


def table_name(feature_name: str) -> str:
    """The table of a sparse feature: `t_<feature>`."""
    return f"{TABLE_PREFIX}{feature_name}"


def embedding_bag_configs(schema: Schema, embedding_dim: int = 16,
                          embedding_cap: Optional[int] = DEFAULT_EMBEDDING_CAP
                          ) -> list[EmbeddingBagConfig]:
    """One sum-pooled table per sparse feature, in schema order.

    Args:
        schema: the prepared dataset's schema.
        embedding_dim: E, the width of every table.
        embedding_cap: at most this many rows per table (search), or None for full tables.

    Returns:
        `EmbeddingBagConfig`s named `t_<feature>` with `feature_names=[feature]` and
        `num_embeddings = schema.table_rows(feature, embedding_cap)`.

    Example::

        configs = embedding_bag_configs(schema, embedding_dim=16, embedding_cap=500_000)
        ebc = EmbeddingBagCollection(tables=configs, device=torch.device("meta"))
    """
    if embedding_dim <= 0:
        raise NASRecError(f"embedding_dim must be positive, got {embedding_dim}")
    if embedding_cap is not None and embedding_cap < 2:
        raise NASRecError(f"embedding_cap must be at least 2 (or None), got {embedding_cap}")
    return [
        EmbeddingBagConfig(
            name=table_name(name), embedding_dim=embedding_dim,
            num_embeddings=schema.table_rows(name, embedding_cap),
            feature_names=[name], pooling=PoolingType.SUM,
        )
        for name in schema.sparse_names
    ]


def build_embedding_bag_collection(schema: Schema, embedding_dim: int = 16,
                                   embedding_cap: Optional[int] = DEFAULT_EMBEDDING_CAP,
                                   device: torch.device | str = "meta"
                                   ) -> EmbeddingBagCollection:
    """An `EmbeddingBagCollection` of `embedding_bag_configs(...)`, on the meta device by default
    (the sharder allocates the real tables; nothing full-size is allocated twice)."""
    return EmbeddingBagCollection(
        tables=embedding_bag_configs(schema, embedding_dim, embedding_cap),
        device=torch.device(device),
    )


def _embedding_collections(model: nn.Module) -> Iterator[EmbeddingBagCollection]:
    for module in model.modules():
        if isinstance(module, EmbeddingBagCollection):
            yield module


def apply_embedding_optimizer(model: nn.Module, learning_rate: float = DEFAULT_EMBEDDING_LR,
                              eps: float = DEFAULT_ADAGRAD_EPS) -> None:
    """Attach exact Adagrad, applied in the backward, to every `EmbeddingBagCollection` of `model`.

    The sharder turns this into the fused FBGEMM kernel (`EmbOptimType.EXACT_ADAGRAD`); unlike
    `fused_params` on the sharder, the planner then counts the optimizer state in its memory
    estimate. Tables already given an in-backward optimizer are left alone.
    """
    for collection in _embedding_collections(model):
        params = [p for p in collection.parameters() if not hasattr(p, "_optimizer_classes")]
        if params:
            _apply_optimizer_in_backward(
                torch.optim.Adagrad, params, {"lr": learning_rate, "eps": eps},
            )


def _local_world_size(world_size: int) -> int:
    value = os.environ.get("LOCAL_WORLD_SIZE")
    return int(value) if value else world_size


SHARDED_TYPES = (
    ShardingType.TABLE_WISE.value, ShardingType.COLUMN_WISE.value,
    ShardingType.TABLE_COLUMN_WISE.value, ShardingType.ROW_WISE.value,
    ShardingType.TABLE_ROW_WISE.value,
)


def default_constraints(tables: Sequence[str]) -> dict[str, ParameterConstraints]:
    """Every table sharded (never data_parallel) with the fused kernel.

    The planner puts small tables data_parallel, where the fused Adagrad does not apply: they
    would get dense gradients and the dense optimizer, and results would depend on the plan.
    """
    return {
        name: ParameterConstraints(
            sharding_types=list(SHARDED_TYPES),
            compute_kernels=[EmbeddingComputeKernel.FUSED.value],
        )
        for name in tables
    }


def make_planner(world_size: int, device: torch.device, *,
                 memory_budget_bytes: Optional[int] = None,
                 constraints: Optional[Mapping[str, ParameterConstraints]] = None,
                 batch_size: Optional[int] = None,
                 model_tables: Sequence[str] = ()) -> EmbeddingShardingPlanner:
    """The TorchRec planner for this run's topology.

    Args:
        world_size: ranks in the job.
        device: the compute device; its type picks the planner's storage tier (HBM on CUDA,
            DDR on CPU), which `memory_budget_bytes` caps per rank.
        memory_budget_bytes: per-rank memory the tables (and optimizer state) may take.
        constraints: table name -> `ParameterConstraints` (e.g. allowed sharding types).
        batch_size: per-rank batch size the planner's cost model assumes.
        model_tables: table names that get `default_constraints` (fused kernel, sharded),
            under any given `constraints`.
    """
    all_constraints = default_constraints(model_tables) if model_tables else {}
    all_constraints.update(constraints or {})
    caps: dict[str, int] = {}
    if memory_budget_bytes is not None:
        caps["hbm_cap" if device.type == "cuda" else "ddr_cap"] = int(memory_budget_bytes)
    topology = Topology(
        world_size=world_size, compute_device=device.type,
        local_world_size=_local_world_size(world_size), **caps,
    )
    kwargs = {"batch_size": batch_size} if batch_size is not None else {}
    return EmbeddingShardingPlanner(
        topology=topology, constraints=all_constraints or None, **kwargs,
    )


def table_bytes(model: nn.Module) -> int:
    """Bytes of every table of `model` with its exact Adagrad state (fp32, two per value)."""
    return sum(config.num_embeddings * config.embedding_dim * 4 * 2
               for collection in _embedding_collections(model)
               for config in collection.embedding_bag_configs())


def plan_summary(plan: ShardingPlan) -> str:
    """One line: the tables of each sharding type and the ranks they are on, e.g.
    "26 tables (26 table_wise) on 2 ranks"."""
    kinds: dict[str, int] = {}
    ranks: set[int] = set()
    for module_plan in plan.plan.values():
        for sharding in module_plan.values():  # an EmbeddingModuleShardingPlan is a dict
            kinds[sharding.sharding_type] = kinds.get(sharding.sharding_type, 0) + 1
            ranks.update(sharding.ranks or ())
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    tables = sum(kinds.values())
    return (f"{tables} table{'' if tables == 1 else 's'} ({counts}) on {len(ranks)} "
            f"rank{'' if len(ranks) == 1 else 's'}")


def _planner_error(model: nn.Module, world_size: int, budget: Optional[int],
                   error: Exception) -> NASRecError:
    need = table_bytes(model) / world_size / 2**30
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if budget is None:
        return NASRecError(f"the sharding planner found no plan: {reason}")
    return NASRecError(
        f"the sharding planner found no plan within the memory budget of {budget / 2**30:.2f} "
        f"GB per rank: the tables need about {need:.2f} GB per rank (weights + Adagrad state "
        f"over {world_size} ranks, before overheads); raise the budget, use more ranks or a "
        f"smaller embedding cap ({reason})")


def shard_model(model: nn.Module, device: torch.device, *,
                learning_rate: float = DEFAULT_EMBEDDING_LR, eps: float = DEFAULT_ADAGRAD_EPS,
                memory_budget_bytes: Optional[int] = None,
                constraints: Optional[Mapping[str, ParameterConstraints]] = None,
                plan: Optional[ShardingPlan] = None,
                batch_size: Optional[int] = None,
                find_unused_parameters: bool = False,
                dense_params_to_ignore: Sequence[str] = (),
                process_group: Optional[dist.ProcessGroup] = None,
                ) -> DistributedModelParallel:
    """Wrap `model` in `DistributedModelParallel`: planned, fused-Adagrad embedding tables.

    Needs an initialised process group (one rank is fine; see `nasrec_torchrec.train.
    distributed`). The model's `EmbeddingBagCollection`s should live on the meta device; the
    other parameters on `device` (or CPU), identical on every rank (DDP broadcasts rank 0's).

    Args:
        model: e.g. `NASRecModelTrain(NASRecModel(ebc, dense_in_features, body))`.
        device: the compute device of this rank.
        learning_rate, eps: exact Adagrad of the tables (fused, applied in the backward).
        memory_budget_bytes: per-rank cap for the planner (HBM on CUDA, DDR on CPU).
        constraints: table name -> `ParameterConstraints`, e.g.
            `{"t_c1": ParameterConstraints(sharding_types=["row_wise"])}`.
        plan: a ready-made `ShardingPlan`, bypassing the planner (e.g. a hand-written
            row-wise plan, which the planner never proposes on CPU).
        batch_size: per-rank batch size for the planner's cost model.
        find_unused_parameters: let DDP over the dense part tolerate parameters a step leaves
            unused; also turns off DDP's static graph.
        dense_params_to_ignore: names (in `model`) of dense parameters DDP leaves alone,
            because the caller synchronises them itself (a supernet's slice gradients).
        process_group: defaults to the world group.

    Returns:
        The `DistributedModelParallel`; its `fused_optimizer` updates the tables.

    Example::

        ebc = build_embedding_bag_collection(schema, embedding_cap=500_000)
        train_model = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), body))
        dmp = shard_model(train_model, torch.device("cpu"), learning_rate=0.04)
    """
    if not dist.is_initialized():
        raise NASRecError("shard_model needs a process group: call init_distributed() first")
    group = process_group if process_group is not None else dist.GroupMember.WORLD
    apply_embedding_optimizer(model, learning_rate, eps)
    sharders: list[ModuleSharder[nn.Module]] = [EmbeddingBagCollectionSharder()]
    if plan is None:
        planner = make_planner(
            dist.get_world_size(group), device, memory_budget_bytes=memory_budget_bytes,
            constraints=constraints, batch_size=batch_size,
            model_tables=[config.name for collection in _embedding_collections(model)
                          for config in collection.embedding_bag_configs()],
        )
        try:
            plan = planner.collective_plan(model, sharders, group)
        except PlannerError as error:
            raise _planner_error(model, dist.get_world_size(group), memory_budget_bytes,
                                 error) from None
    logger.info("sharding plan: %s", plan_summary(plan))
    logger.debug("sharding plan:\n%s", plan)
    wrapper = DefaultDataParallelWrapper(
        static_graph=not find_unused_parameters,
        find_unused_parameters=find_unused_parameters,
        params_to_ignore=list(dense_params_to_ignore),
    )
    return DistributedModelParallel(
        module=model, env=ShardingEnv.from_process_group(group), device=device, plan=plan,
        sharders=sharders, data_parallel_wrapper=wrapper,
    )


def manual_plan(model: nn.Module, sharding_type: str, world_size: int,
                device: torch.device) -> ShardingPlan:
    """A hand-written plan putting every table of `model` under one sharding type.

    `table_wise`: tables round-robin over the ranks; `column_wise`: each table's columns
    split evenly over all ranks (E must divide); `row_wise`: each table's rows split evenly
    over all ranks. The planner never proposes row_wise on CPU, and row_wise needs every
    rank to have the same batch size (train with drop_last).
    """
    from torchrec.distributed.sharding_plan import (
        column_wise, construct_module_sharding_plan, row_wise, table_wise)

    fused = EmbeddingComputeKernel.FUSED.value
    plans = {}
    table_index = 0
    for path, module in model.named_modules():
        if not isinstance(module, EmbeddingBagCollection):
            continue
        per_table = {}
        for config in module.embedding_bag_configs():
            if sharding_type == ShardingType.TABLE_WISE.value:
                per_table[config.name] = table_wise(rank=table_index % world_size,
                                                     compute_kernel=fused)
            elif sharding_type == ShardingType.COLUMN_WISE.value:
                if config.embedding_dim % world_size:
                    raise NASRecError(f"column_wise: {config.name} dim {config.embedding_dim}"
                                      f" does not split over {world_size} ranks")
                per_table[config.name] = column_wise(ranks=list(range(world_size)),
                                                      compute_kernel=fused)
            elif sharding_type == ShardingType.ROW_WISE.value:
                per_table[config.name] = row_wise(compute_kernel=fused)
            else:
                raise NASRecError(f"manual plan: sharding type '{sharding_type}' is not one of "
                                  "table_wise, column_wise, row_wise")
            table_index += 1
        plans[path] = construct_module_sharding_plan(
            module, per_table, EmbeddingBagCollectionSharder(), local_size=world_size,
            world_size=world_size, device_type=device.type)
    return ShardingPlan(plan=plans)


# --- Table weights, independent of the sharding ----------------------------------------------

def embedding_table_names(dmp: nn.Module) -> dict[str, str]:
    """State-dict key -> table name, for every embedding table weight of a (sharded) model."""
    names: dict[str, str] = {}
    for key in dmp.state_dict().keys():
        parts = key.split(".")
        if len(parts) >= 3 and parts[-1] == "weight" and parts[-3] == "embedding_bags":
            names[key] = parts[-2]
    return names


def _local_pieces(tensor: torch.Tensor
                  ) -> Iterator[tuple[torch.Tensor, tuple[int, int], tuple[int, int]]]:
    """(local tensor, (row_start, row_end), (col_start, col_end)) of a sharded or plain tensor."""
    local_shards = getattr(tensor, "local_shards", None)
    if callable(local_shards):
        for shard in local_shards():
            row0, col0 = shard.metadata.shard_offsets
            rows, cols = shard.metadata.shard_sizes
            yield shard.tensor, (row0, row0 + rows), (col0, col0 + cols)
    elif hasattr(tensor, "to_local") and hasattr(tensor, "placements"):  # DTensor
        raise NASRecError("DTensor embedding weights are not supported")
    else:
        rows, cols = tensor.shape
        yield tensor, (0, rows), (0, cols)


@torch.no_grad()
def fill_embedding_tables(
    dmp: nn.Module,
    fill: Callable[[str, tuple[int, int], tuple[int, int]], torch.Tensor],
    only: Optional[set[str]] = None,
) -> None:
    """Write every table's local shards in place: `fill(table, rows, cols)` gives the block
    `[row_end - row_start, col_end - col_start]` of the full table (global coordinates);
    `only` restricts the tables written."""
    state = dmp.state_dict()
    for key, name in embedding_table_names(dmp).items():
        if only is not None and name not in only:
            continue
        for local, rows, cols in _local_pieces(state[key]):
            if local.numel():
                local.copy_(fill(name, rows, cols).to(local.dtype))


def load_embedding_tables(dmp: nn.Module, tables: Mapping[str, torch.Tensor]) -> None:
    """Copy full-size table weights (table name -> `[rows, E]`) into the sharded model in place.

    DMP initialises tables itself and ignores weights set before wrapping; this is the way
    to put known weights into them. Tables not in `tables` are left as they are.
    """
    state_names = set(embedding_table_names(dmp).values())
    unknown = set(tables) - state_names
    if unknown:
        raise NASRecError(f"unknown embedding tables {sorted(unknown)}; "
                          f"the model has {sorted(state_names)}")

    def fill(name: str, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        return tables[name][rows[0]:rows[1], cols[0]:cols[1]]

    fill_embedding_tables(dmp, fill, only=set(tables))


def _block_seed(seed: int, table: str, block: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{table}/{block}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _table_seed(seed: int, table: str) -> int:
    digest = hashlib.blake2b(f"{seed}:{table}".encode(), digest_size=7).digest()
    return int.from_bytes(digest, "little")


def _normal_blocks(num_rows: int, dim: int) -> list[tuple[int, int]]:
    """Row ranges of the normal draw: 65536 rows each, a last one under 16 values merged into
    the one before (CPU `normal_` fills 16 values at a time and redraws a ragged end's last 16,
    so blocks of whole 16s and a last one of at least 16 equal one whole-table draw)."""
    starts = list(range(0, num_rows, _INIT_BLOCK_ROWS)) or [0]
    if len(starts) > 1 and (num_rows - starts[-1]) * dim < 16:
        starts.pop()
    return list(zip(starts, starts[1:] + [num_rows]))


@torch.no_grad()
def init_embedding_weights(dmp: nn.Module, seed: int, std: Optional[float] = None) -> None:
    """Initialise every table, the same values for any sharding, block by block.

    Default (`std` None): uniform in ±1/sqrt(rows). A table is drawn in blocks of 65536 rows,
    each from a generator seeded by (seed, table, block); a shard draws only the blocks it
    overlaps. With `std`: N(0, std^2) (FuxiCTR's initialiser), the table's values in row order
    from one generator seeded by (seed, table), drawn in blocks of 65536 rows (the same values
    as one draw of the whole table); a shard draws up to its last row and keeps its part.

    So 1 rank and N ranks, table-wise, column-wise or row-wise, start from the same weights,
    and a run is reproducible from its seed (DMP's own initialisation depends on the plan).
    Each block is written in place into the local shard: beyond the tables, memory grows by
    one block (a few MB), not by a table.
    """
    state = dmp.state_dict()
    for key, name in embedding_table_names(dmp).items():
        num_rows, dim = state[key].size()
        bound = num_rows ** -0.5
        for local, rows, cols in _local_pieces(state[key]):
            if not local.numel():
                continue
            if std is None:
                blocks = [(block * _INIT_BLOCK_ROWS, min((block + 1) * _INIT_BLOCK_ROWS, num_rows))
                          for block in range(rows[0] // _INIT_BLOCK_ROWS,
                                             (rows[1] - 1) // _INIT_BLOCK_ROWS + 1)]
            else:  # the blocks before the shard too: they advance the table's generator
                generator = torch.Generator().manual_seed(_table_seed(seed, name))
                blocks = [block for block in _normal_blocks(num_rows, dim) if block[0] < rows[1]]
            for start, stop in blocks:
                if std is None:
                    generator = torch.Generator().manual_seed(
                        _block_seed(seed, name, start // _INIT_BLOCK_ROWS))
                    values = torch.rand(stop - start, dim, generator=generator)
                else:
                    values = torch.randn(stop - start, dim, generator=generator)
                lo, hi = max(rows[0], start), min(rows[1], stop)
                if lo >= hi:  # a block before the shard, drawn to advance the generator
                    continue
                part = values[lo - start:hi - start, cols[0]:cols[1]]
                part = part.mul_(2).sub_(1).mul_(bound) if std is None else part * std
                local[lo - rows[0]:hi - rows[0]].copy_(part)
