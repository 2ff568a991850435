"""One configuration of the embedding benchmark, measured on this rank.

Two paths over the same tables and ids:

* the raw FBGEMM kernel (`SplitTableBatchedEmbeddingBagsCodegen`, host memory on CPU, the
  kernel TorchRec's fused CPU tables run) holding every table in one process;
* the tables of an `EmbeddingBagCollection` sharded by `DistributedModelParallel`
  (`embeddings.shard_model`) under a plan of one sharding type.

A step is the forward of every table over a batch (`pooling_factor` ids per table per sample,
uniform over the table's rows, sum pooling), the backward of the sum of the pooled embeddings,
and the tables' exact Adagrad update: fused into the backward (the kernel and every sharded
type), or, for data_parallel tables (dense kernel, replicated on every rank), a
`torch.optim.Adagrad` step after DDP all-reduced their dense gradients.

Memory: this process's peak resident set over the configuration (Linux: VmHWM, reset through
/proc/self/clear_refs before it starts; elsewhere the peak of the process's lifetime) and the
bytes of the table weights and optimizer state this rank holds.
"""

from __future__ import annotations

import gc
import resource
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
from torchrec.distributed.planner.types import ParameterConstraints, PlannerError
from torchrec.distributed.types import ShardingPlan
from torchrec.modules.embedding_configs import EmbeddingBagConfig
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.optim.optimizers import in_backward_optimizer_filter
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.embeddings import (
    DEFAULT_ADAGRAD_EPS, DEFAULT_EMBEDDING_LR, apply_embedding_optimizer, embedding_table_names,
    make_planner, shard_model, table_name)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.stages.bench.embeddings import AUTO, DATA_PARALLEL
from nasrec_torchrec.train.distributed import DistributedContext, barrier, broadcast_object
from nasrec_torchrec.train.optimizers import dense_optimizer
from nasrec_torchrec.train.sharding import table_sharding

_PEAK_RESET_FILE = "/proc/self/clear_refs"
_STATUS_FILE = "/proc/self/status"


@dataclass(frozen=True)
class StepShape:
    """What every configuration of a run shares.

    Args:
        embedding_dim: D of every table.
        batch_size: B, samples per step over all ranks (each rank takes B / world_size).
        pooling_factor: P, ids per table per sample.
        steps, warmup_steps: timed steps, and untimed ones before them.
        seed: of the ids (the same ids for every path and rank count).
    """

    embedding_dim: int
    batch_size: int
    pooling_factor: int
    steps: int
    warmup_steps: int
    seed: int


# --- memory --------------------------------------------------------------------------------

def _status_bytes(key: str) -> Optional[int]:
    """A `kB` line of /proc/self/status in bytes (None where there is no such file)."""
    try:
        with open(_STATUS_FILE) as handle:
            for line in handle:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Free what is unreferenced and start a new peak-RSS window; False where the peak
    cannot be reset (then `peak_rss_bytes` is the process's lifetime peak)."""
    gc.collect()
    try:
        with open(_PEAK_RESET_FILE, "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def rss_bytes() -> Optional[int]:
    """This process's resident set now (None where unknown)."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """This process's peak resident set since `reset_peak_rss` (else since it started)."""
    peak = _status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _local_bytes(value: Any) -> int:
    """Bytes this rank holds of a tensor or a sharded tensor's local shards."""
    local_shards = getattr(value, "local_shards", None)
    if callable(local_shards):
        return sum(_local_bytes(shard.tensor) for shard in local_shards())
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    return 0


# --- inputs and timing ---------------------------------------------------------------------

def id_batches(table_rows: Sequence[int], shape: StepShape) -> list[torch.Tensor]:
    """The ids of every step (warm-up first): `[T, B, P]` int64 each, table t's ids uniform
    over its `table_rows[t]` rows."""
    generator = torch.Generator().manual_seed(shape.seed)
    return [torch.stack([torch.randint(0, rows, (shape.batch_size, shape.pooling_factor),
                                       generator=generator) for rows in table_rows])
            for _ in range(shape.warmup_steps + shape.steps)]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_seconds(step: Callable[[Any], None], inputs: Sequence[Any], warmup_steps: int,
                   device: torch.device, collective: bool) -> float:
    """Seconds of the steps after the warm-up ones (all ranks together if `collective`)."""
    for item in inputs[:warmup_steps]:
        step(item)
    _synchronize(device)
    if collective:
        barrier()
    start = time.perf_counter()
    for item in inputs[warmup_steps:]:
        step(item)
    _synchronize(device)
    if collective:
        barrier()
    return time.perf_counter() - start


def _start_window(device: torch.device) -> Optional[int]:
    """The RSS before a configuration, after freeing the last one and resetting the peaks."""
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return rss_bytes()


def _memory(device: torch.device, rss_before: Optional[int], table_bytes: int
            ) -> dict[str, Any]:
    memory: dict[str, Any] = {"peak_rss_bytes": peak_rss_bytes(),
                              "rss_before_bytes": rss_before, "table_bytes": table_bytes}
    if device.type == "cuda":
        memory["peak_device_bytes"] = torch.cuda.max_memory_allocated(device)
    return memory


# --- the raw kernel ------------------------------------------------------------------------

def measure_kernel(table_rows: Sequence[int], shape: StepShape, device: torch.device
                   ) -> dict[str, Any]:
    """The FBGEMM kernel alone on `device`, every table in this process, the whole batch.

    Returns: seconds (of the timed steps), build_seconds, and this process's memory
    (peak_rss_bytes, rss_before_bytes, table_bytes; peak_device_bytes on CUDA).
    """
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
        ComputeDevice, EmbeddingLocation, SplitTableBatchedEmbeddingBagsCodegen)

    rss_before = _start_window(device)
    on_cpu = device.type == "cpu"
    location = EmbeddingLocation.HOST if on_cpu else EmbeddingLocation.DEVICE
    compute = ComputeDevice.CPU if on_cpu else ComputeDevice.CUDA
    start = time.perf_counter()
    kernel = SplitTableBatchedEmbeddingBagsCodegen(
        embedding_specs=[(rows, shape.embedding_dim, location, compute) for rows in table_rows],
        optimizer=EmbOptimType.EXACT_ADAGRAD, learning_rate=DEFAULT_EMBEDDING_LR,
        eps=DEFAULT_ADAGRAD_EPS, device=device)
    build_seconds = time.perf_counter() - start
    ids = [batch.reshape(-1).to(device) for batch in id_batches(table_rows, shape)]
    pooled_bags = len(table_rows) * shape.batch_size
    offsets = torch.arange(0, pooled_bags * shape.pooling_factor + 1, shape.pooling_factor,
                           device=device)

    def step(indices: torch.Tensor) -> None:
        kernel(indices, offsets).sum().backward()  # pooled [B, T * D]; Adagrad in the backward

    seconds = _timed_seconds(step, ids, shape.warmup_steps, device, collective=False)
    table_bytes = sum(_local_bytes(weights) for weights in kernel.split_embedding_weights()) \
        + sum(_local_bytes(state) for states in kernel.split_optimizer_states()
              for state in states)
    return {"seconds": seconds, "build_seconds": build_seconds,
            **_memory(device, rss_before, table_bytes)}


# --- the sharded tables --------------------------------------------------------------------

class PooledSum(nn.Module):
    """The benchmark's model: every table's pooled embeddings summed to one scalar.

    Args:
        tables: the `EmbeddingBagConfig`s (one feature each), built on the meta device (the
            sharder allocates them).

    Forward: a KJT of `B` samples -> the sum of the `[B, T * D]` pooled embeddings.
    """

    def __init__(self, tables: Sequence[EmbeddingBagConfig]) -> None:
        super().__init__()
        self.ebc = EmbeddingBagCollection(tables=list(tables), device=torch.device("meta"))

    def forward(self, features: KeyedJaggedTensor) -> torch.Tensor:
        return self.ebc(features).values().sum()


def feature_names(num_tables: int) -> list[str]:
    """The benchmark's features `f0`, `f1`, ...; table `t_f0` reads `f0`."""
    return [f"f{index}" for index in range(num_tables)]


def benchmark_model(table_rows: Sequence[int], embedding_dim: int) -> PooledSum:
    """A `PooledSum` over one sum-pooled table per entry of `table_rows`."""
    return PooledSum([EmbeddingBagConfig(name=table_name(name), embedding_dim=embedding_dim,
                                         num_embeddings=rows, feature_names=[name])
                      for name, rows in zip(feature_names(len(table_rows)), table_rows)])


def plan_tables(model: nn.Module, sharding_type: str, world_size: int, device: torch.device,
                batch_per_rank: int, is_main: bool) -> tuple[ShardingPlan, str]:
    """The plan of every table of `model` under `sharding_type`, and who made it.

    "auto": the planner's choice among the sharded types; "data_parallel": the planner with
    the dense kernel; row_wise: a hand-written plan (the planner never proposes it on CPU,
    `train.sharding.table_sharding`); any other type: the planner, constrained to it with the
    fused kernel. Rank 0 plans and hands the plan (or the planner's refusal, then a
    `NASRecError` on every rank) to the others; a collective.
    """
    apply_embedding_optimizer(model)  # the planner then counts the Adagrad state
    tables = [config.name for config in model.ebc.embedding_bag_configs()]
    if sharding_type == DATA_PARALLEL:
        constraints: Optional[dict[str, ParameterConstraints]] = {
            table: ParameterConstraints(sharding_types=[DATA_PARALLEL], compute_kernels=["dense"])
            for table in tables}
        plan = None
    else:
        features = [table.removeprefix(table_name("")) for table in tables]
        constraints, plan = table_sharding(model, features, "adagrad",
                                           None if sharding_type == AUTO else sharding_type,
                                           world_size, device)
    if plan is not None:
        return plan, "hand-written"
    planned: Optional[ShardingPlan | str] = None
    if is_main:
        planner = make_planner(world_size, device, constraints=constraints,
                               batch_size=batch_per_rank, model_tables=tables)
        try:
            planned = planner.plan(model, [EmbeddingBagCollectionSharder()])
        except PlannerError as error:
            planned = str(error).strip().splitlines()[0] if str(error).strip() else "no plan"
    planned = broadcast_object(planned)
    if isinstance(planned, str):
        raise NASRecError(f"the sharding planner found no {sharding_type} plan: {planned}")
    return planned, "planner"


def plan_records(plan: ShardingPlan, table_rows: Sequence[int]) -> list[dict[str, Any]]:
    """Per table: its name, rows, sharding type, compute kernel, ranks and shards
    (rank, [row, column] offsets, [rows, columns] sizes; none for data_parallel)."""
    rows_of = {table_name(name): rows
               for name, rows in zip(feature_names(len(table_rows)), table_rows)}
    records = []
    for module_plan in plan.plan.values():
        for table, sharding in module_plan.items():  # an EmbeddingModuleShardingPlan is a dict
            shards = sharding.sharding_spec.shards if sharding.sharding_spec else []
            records.append({
                "table": table, "rows": rows_of.get(table), "sharding_type":
                sharding.sharding_type, "compute_kernel": sharding.compute_kernel,
                "ranks": sorted(set(sharding.ranks or ())),
                "shards": [{"rank": shard.placement.rank(), "offsets": list(shard.shard_offsets),
                            "sizes": list(shard.shard_sizes)} for shard in shards]})
    return records


def measure_sharded(table_rows: Sequence[int], sharding_type: str, shape: StepShape,
                    context: DistributedContext) -> dict[str, Any]:
    """The tables sharded over every rank under `sharding_type`; a collective.

    Each rank takes its `B / world_size` slice of every step's ids. Returns (this rank's):
    seconds (of the timed steps, the same on every rank), build_seconds, plan (see
    `plan_records`), plan_source ("planner" or "hand-written") and this rank's memory.
    """
    batch = shape.batch_size // context.world_size
    rss_before = _start_window(context.device)
    model = benchmark_model(table_rows, shape.embedding_dim)
    plan, plan_source = plan_tables(model, sharding_type, context.world_size, context.device,
                                    batch, context.is_main)
    start = time.perf_counter()
    dmp = shard_model(model, context.device, plan=plan)
    optimizers: list[Any] = [dmp.fused_optimizer]
    if dict(in_backward_optimizer_filter(dmp.named_parameters())):  # data-parallel tables
        optimizers.append(dense_optimizer(dmp, DEFAULT_EMBEDDING_LR, DEFAULT_ADAGRAD_EPS))
    build_seconds = time.perf_counter() - start
    names = feature_names(len(table_rows))
    low = context.rank * batch
    lengths = torch.full((len(names) * batch,), shape.pooling_factor, dtype=torch.int32)
    features = [KeyedJaggedTensor(keys=names, values=ids[:, low:low + batch].reshape(-1),
                                  lengths=lengths, stride=batch).to(context.device)
                for ids in id_batches(table_rows, shape)]

    def step(kjt: KeyedJaggedTensor) -> None:
        for optimizer in optimizers:
            optimizer.zero_grad()
        dmp(kjt).backward()
        for optimizer in optimizers:
            optimizer.step()

    seconds = _timed_seconds(step, features, shape.warmup_steps, context.device,
                             collective=True)
    state = dmp.state_dict()
    table_bytes = sum(_local_bytes(state[key]) for key in embedding_table_names(dmp)) \
        + sum(_local_bytes(value) for optimizer in optimizers
              for per_parameter in optimizer.state.values() for value in per_parameter.values())
    return {"seconds": seconds, "build_seconds": build_seconds,
            "plan": plan_records(plan, table_rows), "plan_source": plan_source,
            **_memory(context.device, rss_before, table_bytes)}
