"""Process-group setup: torchrun ranks or a lone process, gloo on CPU, NCCL on CUDA.

`DistributedModelParallel` always needs a process group, so a run without torchrun gets a
one-rank gloo group over an in-memory store (no port, no network).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator, Optional

import torch
import torch.distributed as dist

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.config import DEVICE_CHOICES

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the job.

    Args:
        rank, world_size: of the default process group.
        local_rank, local_world_size: on this machine.
        device: the compute device of this rank (`cuda:<local_rank>` or `cpu`).
        backend: "nccl" or "gloo".
        owns_group: whether `init_distributed` created the group (and teardown destroys it).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str
    owns_group: bool

    @property
    def is_main(self) -> bool:
        """Rank 0, the one that writes shared files and logs progress."""
        return self.rank == 0


def choose_device(device: str, local_rank: int = 0) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` fails clearly when there is none."""
    if device not in DEVICE_CHOICES:
        raise NASRecError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got '{device}'")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise NASRecError("--device cuda: no CUDA device is available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def set_threads(num_threads: Optional[int], local_world_size: int) -> int:
    """Pin intra-op threads: `num_threads` if given, else `OMP_NUM_THREADS` if set, else the
    machine's cores shared evenly between the local ranks (never oversubscribed)."""
    if num_threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        if env:
            num_threads = int(env)
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
            num_threads = max(1, cores // max(1, local_world_size))
    if num_threads < 1:
        raise NASRecError(f"--threads must be at least 1, got {num_threads}")
    torch.set_num_threads(num_threads)
    return num_threads


def init_distributed(device: str = "auto", num_threads: Optional[int] = None,
                     timeout_seconds: float = 1800.0) -> DistributedContext:
    """Join the torchrun job described by RANK / WORLD_SIZE / LOCAL_RANK, or, without
    torchrun, start a one-rank group. Reuses a group that is already initialised.

    Args:
        device: "auto", "cpu" or "cuda".
        num_threads: intra-op threads per rank (see `set_threads`).
        timeout_seconds: collective timeout.
    """
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if launched else 0
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))
                           ) if launched else 1
    compute_device = choose_device(device, local_rank)
    backend = "nccl" if compute_device.type == "cuda" else "gloo"
    threads = set_threads(num_threads, local_world_size)
    owns_group = False
    if not dist.is_initialized():
        if compute_device.type == "cuda":
            torch.cuda.set_device(compute_device)
        timeout = timedelta(seconds=timeout_seconds)
        if launched:
            dist.init_process_group(backend=backend, timeout=timeout)
        else:
            dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0,
                                    world_size=1, timeout=timeout)
        owns_group = True
    context = DistributedContext(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
        local_world_size=local_world_size, device=compute_device,
        backend=dist.get_backend(), owns_group=owns_group,
    )
    logger.info("rank %d/%d on %s (%s), %d threads", context.rank, context.world_size,
                context.device, context.backend, threads)
    return context


def teardown(context: Optional[DistributedContext] = None) -> None:
    """Destroy the process group if `init_distributed` created it (or if no context is given).

    Models released by the caller are collected first: a DistributedDataParallel module (the
    dense part, data-parallel tables) left to the interpreter's exit outlives its group, and its
    reducer's threads then abort the process ("terminate called without an active exception").
    """
    if dist.is_initialized() and (context is None or context.owns_group):
        gc.collect()
        dist.destroy_process_group()


@contextmanager
def distributed(device: str = "auto", num_threads: Optional[int] = None
                ) -> Iterator[DistributedContext]:
    """`with distributed("cpu") as context: ...`, tearing the group down on the way out."""
    context = init_distributed(device, num_threads)
    try:
        yield context
    finally:
        teardown(context)


def barrier() -> None:
    """A barrier when a process group exists (no-op otherwise)."""
    if dist.is_initialized():
        dist.barrier()


def broadcast_object(value: Any) -> Any:
    """`value` of rank 0 on every rank (a no-op without a multi-rank group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def same_on_every_rank(value: Any) -> bool:
    """Whether every rank holds an equal `value` (compared by a digest of its `repr`; a
    collective, True without a multi-rank group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return True
    digest = hashlib.blake2b(repr(value).encode(), digest_size=7).digest()
    low = torch.tensor([int.from_bytes(digest, "little")], dtype=torch.int64)
    high = low.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    return low.item() == high.item()


def global_mean(values: list[torch.Tensor], device: torch.device) -> list[float]:
    """The mean over the ranks of each scalar in `values` (a collective over `device`)."""
    stacked = torch.stack([v.detach().float().reshape(()) for v in values]).cpu()
    if dist.is_initialized() and dist.get_world_size() > 1:
        stacked = stacked.to(device)
        dist.all_reduce(stacked)
        stacked = stacked.cpu() / dist.get_world_size()
    return stacked.tolist()
