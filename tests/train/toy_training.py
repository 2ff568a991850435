"""A tiny real TorchRec setup for the training tests: schema, seeded batches, a small body.

Also the entry points of the multi-process tests (run under `torch.multiprocessing.spawn`
with the torchrun environment variables set by hand, so `init_distributed` takes its torchrun
path).
"""

from __future__ import annotations

import os
import socket
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torchrec.datasets.utils import Batch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.data.schema import Schema, SparseFeature, table_row
from nasrec_torchrec.train.config import TrainConfig

DENSE = 3
CARDINALITIES = (7, 40, 300, 1000)


def toy_schema(cardinalities: tuple[int, ...] = CARDINALITIES) -> Schema:
    """3 dense features and a few sparse ones of the given full cardinalities."""
    return Schema(
        label="label", dense=tuple(f"d{i}" for i in range(DENSE)),
        sparse=tuple(SparseFeature(f"c{i}", n) for i, n in enumerate(cardinalities)),
        source_format="synthetic",
    )


class ToyBody(nn.Module):
    """`body(dense [B, Dn], sparse [B, F, E]) -> logits [B]`: flatten, then a 2-layer MLP."""

    def __init__(self, dense_in_features: int, num_sparse_features: int,
                 embedding_dim: int, hidden: int = 16) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(dense_in_features + num_sparse_features * embedding_dim, hidden),
            nn.ReLU(), nn.Linear(hidden, 1),
        )

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([dense, sparse.flatten(1)], dim=1)).squeeze(1)


def toy_rows(schema: Schema, num_rows: int, seed: int = 0
             ) -> tuple[torch.Tensor, list[list[np.ndarray]], torch.Tensor]:
    """A seeded dataset: dense [N, Dn], per row per feature a few full-vocabulary ids
    (0..3 of them, Zipf-ish), labels [N] that depend on both."""
    generator = np.random.default_rng(seed)
    dense = generator.standard_normal((num_rows, len(schema.dense))).astype(np.float32)
    ids: list[list[np.ndarray]] = []
    signal = dense[:, 0].copy()
    for row in range(num_rows):
        per_feature = []
        for feature in schema.sparse:
            count = int(generator.integers(0, 4))
            values = np.minimum(generator.zipf(1.3, count), feature.num_rows - 1).astype(np.int64)
            per_feature.append(values)
            signal[row] += 0.3 * float(np.sum(values % 3 == 0))
        ids.append(per_feature)
    labels = (generator.random(num_rows) < 1 / (1 + np.exp(-(signal - 0.5)))).astype(np.float32)
    return torch.from_numpy(dense), ids, torch.from_numpy(labels)


def make_batch(schema: Schema, dense: torch.Tensor, ids: list[list[np.ndarray]],
               labels: torch.Tensor, embedding_cap: Optional[int]) -> Batch:
    """A real `Batch`: KJT keyed by sparse name, ids mapped to table rows (capped or full)."""
    values, lengths = [], []
    for f, feature in enumerate(schema.sparse):
        rows = schema.table_rows(feature.name, embedding_cap)
        for row_ids in ids:
            mapped = table_row(row_ids[f], rows)
            values.append(mapped)
            lengths.append(len(mapped))
    kjt = KeyedJaggedTensor.from_lengths_sync(
        keys=schema.sparse_names,
        values=torch.from_numpy(np.concatenate(values).astype(np.int64)) if values
        else torch.zeros(0, dtype=torch.int64),
        lengths=torch.tensor(lengths, dtype=torch.int32),
    )
    return Batch(dense_features=dense, sparse_features=kjt, labels=labels)


class ToyLoader:
    """Batches of the loader's contract: rank r's batch i is rows
    [i*G + r*b, i*G + (r+1)*b) with G = b * world_size; `start_at` skips ahead."""

    def __init__(self, schema: Schema, num_rows: int, batch_size: int, *, seed: int = 0,
                 embedding_cap: Optional[int] = None, rank: int = 0,
                 world_size: int = 1) -> None:
        self.schema = schema
        self.data = toy_rows(schema, num_rows, seed)
        self.batch_size = batch_size
        self.embedding_cap = embedding_cap
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._start = 0

    def __len__(self) -> int:
        return self.data[0].shape[0] // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def start_at(self, batch_index: int) -> None:
        self._start = batch_index

    def __iter__(self):
        dense, ids, labels = self.data
        start, self._start = self._start, 0
        for index in range(start, len(self)):
            lo = index * self.batch_size * self.world_size + self.rank * self.batch_size
            hi = lo + self.batch_size
            yield make_batch(self.schema, dense[lo:hi], ids[lo:hi], labels[lo:hi],
                             self.embedding_cap)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawned(rank: int, world_size: int, port: int, target: Callable[..., None],
             args: tuple) -> None:
    os.environ.update({
        "RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
    })
    torch.set_num_threads(1)
    target(*args)


def run_ranks(world_size: int, target: Callable[..., None], *args: object) -> None:
    """Run `target(*args)` in `world_size` fresh processes set up as torchrun would."""
    import torch.multiprocessing as mp

    mp.spawn(_spawned, args=(world_size, free_port(), target, args), nprocs=world_size,
             join=True)


def toy_dmp(schema: Schema, *, embedding_dim: int = 4, embedding_cap: Optional[int] = None,
            seed: int = 0, sharding_types: Optional[list[str]] = None,
            embedding_l2: float = 0.0, baseline: Optional[str] = None):
    """A sharded `NASRecModelTrain` over `ToyBody` (or the body of `baseline`), seeded tables
    (the same for any plan)."""
    from torchrec.distributed.planner.types import ParameterConstraints

    from nasrec_torchrec.embeddings import (
        build_embedding_bag_collection, init_embedding_weights, shard_model)
    from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain

    torch.manual_seed(seed)
    ebc = build_embedding_bag_collection(schema, embedding_dim, embedding_cap)
    if baseline is None:
        body = ToyBody(len(schema.dense), len(schema.sparse), embedding_dim)
    else:
        from nasrec_torchrec.baselines import get_baseline

        body = get_baseline(baseline, len(schema.dense), len(schema.sparse), embedding_dim)
    constraints = None
    if sharding_types:
        constraints = {f"t_{name}": ParameterConstraints(sharding_types=sharding_types)
                       for name in schema.sparse_names}
    dmp = shard_model(NASRecModelTrain(NASRecModel(ebc, len(schema.dense), body), embedding_l2),
                      torch.device("cpu"), constraints=constraints)
    init_embedding_weights(dmp, seed)
    return dmp


def full_state(dmp, optimizer=None) -> dict[str, torch.Tensor]:
    """Flattened model (and optimizer) state, every sharded tensor assembled from the local
    shards of all ranks (a collective; ranks may hold different optimizer keys)."""
    import torch.distributed as dist

    state = {"model": dmp.state_dict()}
    if optimizer is not None:
        state["optim"] = optimizer.state_dict()["state"]
    pieces: dict[str, tuple] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key in value:
                walk(f"{prefix}.{key}" if prefix else key, value[key])
        elif hasattr(value, "local_shards"):
            pieces[prefix] = (tuple(value.size()), [
                (tuple(shard.metadata.shard_offsets), shard.tensor.detach().clone())
                for shard in value.local_shards()])
        elif isinstance(value, torch.Tensor):
            pieces[prefix] = (tuple(value.shape), [((0,) * value.dim(), value.detach().clone())])

    walk("", state)
    everything: list = [None] * dist.get_world_size()
    dist.all_gather_object(everything, pieces)
    flat: dict[str, torch.Tensor] = {}
    for rank_pieces in everything:
        for key, (size, shards) in rank_pieces.items():
            full = flat.setdefault(key, torch.zeros(size))
            for offsets, tensor in shards:
                index = tuple(slice(o, o + n) for o, n in zip(offsets, tensor.shape))
                full[index] = tensor
    return flat


def train_toy(dmp, loader: "ToyLoader", steps: int, *, start_step: int = 0,
              optimizer=None, schedule=None, on_step=None) -> list[float]:
    """Run steps [start_step, steps) of a plain TorchRec loop (`TrainPipelineBase`, combined
    optimizer, cosine schedule); returns the global mean loss of each step."""
    import torch.distributed as dist
    from torchrec.distributed.train_pipeline import TrainPipelineBase

    from nasrec_torchrec.train.optimizers import build_optimizer
    from nasrec_torchrec.train.schedules import LRSchedule

    optimizer = optimizer if optimizer is not None else build_optimizer(dmp)
    schedule = schedule if schedule is not None else LRSchedule(optimizer, steps)
    pipeline = TrainPipelineBase(dmp, optimizer, torch.device("cpu"))
    loader.start_at(start_step)
    iterator = iter(loader)
    losses = []
    for step in range(start_step, steps):
        loss, _, _ = pipeline.progress(iterator)
        loss = loss.detach().clone()
        dist.all_reduce(loss)
        losses.append(float(loss) / dist.get_world_size())
        schedule.step()
        if on_step is not None:
            on_step(step + 1, optimizer, schedule)
    return losses


class ToySupernet(nn.Module):
    """Two branches, one per path ("a" or "b"): a step leaves the other's parameters unused."""

    def __init__(self, dense_in_features: int, num_sparse_features: int,
                 embedding_dim: int) -> None:
        super().__init__()
        self.branches = nn.ModuleDict({
            "a": ToyBody(dense_in_features, num_sparse_features, embedding_dim, hidden=8),
            "b": ToyBody(dense_in_features, num_sparse_features, embedding_dim, hidden=12),
        })
        self._architecture: Optional[str] = None

    def set_architecture(self, architecture: str) -> None:
        self._architecture = architecture

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor,
                architecture: Optional[str] = None) -> torch.Tensor:
        return self.branches[architecture or self._architecture](dense, sparse)


class ToyPathSampler:
    """`next_path(step)` -> "a" or "b" from a seeded generator; JSON-able state."""

    def __init__(self, seed: int = 0) -> None:
        import random

        self._rng = random.Random(seed)

    def next_path(self, step: int) -> str:
        return "a" if self._rng.random() < 0.5 else "b"

    def state_dict(self) -> dict:
        version, internal, gauss = self._rng.getstate()
        return {"rng_state": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng_state"]
        self._rng.setstate((version, tuple(internal), gauss))


def small_config(output, **overrides) -> TrainConfig:
    """A toy-sized `TrainConfig` writing to `output` (one-step logging, no progress bar);
    `overrides` set any other field."""
    settings = dict(output=str(output), batch_size=64, eval_batch_size=50, embedding_dim=4,
                    embedding_cap=None, log_every=1, progress_bar=False)
    settings.update(overrides)
    return TrainConfig(**settings)


def toy_trainer(config, context, *, supernet: bool = False, rows: int = 512,
                eval_rows: int = 200, callbacks=(), space=None):
    """A `Trainer` over toy data (the train and eval loaders of this rank); `supernet`: the
    `ToySupernet`, or with `space` (a `SearchSpace`) a real `Supernet` with a `PathSampler`."""
    from nasrec_torchrec.train.trainer import Trainer

    schema = toy_schema()
    world = context.world_size
    train = ToyLoader(schema, rows, config.batch_size // world, seed=config.seed,
                      embedding_cap=config.embedding_cap, rank=context.rank, world_size=world)
    evaluation = ToyLoader(schema, eval_rows, config.eval_batch_size // world, seed=99,
                           embedding_cap=config.embedding_cap, rank=context.rank,
                           world_size=world)
    torch.manual_seed(config.seed)
    dims = (len(schema.dense), len(schema.sparse), config.embedding_dim)
    if supernet and space is not None:
        import random

        from nasrec_torchrec.nn.networks import Supernet
        from nasrec_torchrec.space import PathSampler, sample_full

        return Trainer(config, context, Supernet(space, *dims), train, evaluation,
                       path_sampler=PathSampler(space, seed=config.seed),
                       eval_architecture=sample_full(space, random.Random(config.seed)),
                       callbacks=callbacks)
    if supernet:
        return Trainer(config, context, ToySupernet(*dims), train, evaluation,
                       path_sampler=ToyPathSampler(config.seed), eval_architecture="a",
                       callbacks=callbacks)
    return Trainer(config, context, ToyBody(*dims), train, evaluation, callbacks=callbacks)


def read_metrics(output: str) -> list[dict]:
    import json

    with open(os.path.join(output, "metrics.jsonl")) as handle:
        return [json.loads(line) for line in handle if line.strip()]
