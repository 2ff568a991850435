"""Checkpoints with `torch.distributed.checkpoint`: sharded model, optimizers, run state.

A checkpoint is a directory `step_<000000123>/` holding the DCP files of
`{"model": dmp.state_dict(), "optim": optimizer.state_dict()}` (every rank writes its own
shards) and `state.json`: the JSON-able run state the caller gives (LR schedule, path sampler
RNG state, data position, step, config). It is written under a temporary name and renamed when
complete, so a directory named `step_*` is always whole; only the last `keep_last` are kept.
The directory must be visible to every rank (one machine, or a shared filesystem).

Loading allows a partial load, so a checkpoint saved by W ranks with one sharding plan loads
into any other world size and plan: DCP reshards the tensors. Model tensors missing from a
checkpoint are an error; optimizer keys may differ between plans and are reported. Loading
never executes what a checkpoint holds (`train.checkpoint_reader`): a crafted, truncated or
corrupt checkpoint is a `NASRecError` naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from typing import Any, Mapping, Optional

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint import DefaultSavePlanner
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.planner import WriteItem

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.checkpoint_reader import SafeFileSystemReader, SafeLoadPlanner
from nasrec_torchrec.train.distributed import barrier

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def step_directory(directory: str, step: int) -> str:
    """The directory of the checkpoint of step `step`."""
    return os.path.join(directory, f"step_{step:09d}")


def list_checkpoints(directory: str) -> list[tuple[int, str]]:
    """Complete checkpoints under `directory` as (step, path), oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _STEP_DIR.match(name)
        path = os.path.join(directory, name)
        if match and os.path.isfile(os.path.join(path, STATE_FILE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: str) -> Optional[str]:
    """The newest complete checkpoint under `directory`, or None."""
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1][1] if checkpoints else None


def _state(model: nn.Module, optimizer: Optional[torch.optim.Optimizer]) -> dict[str, Any]:
    state: dict[str, Any] = {"model": model.state_dict()}
    if optimizer is not None:
        state["optim"] = optimizer.state_dict()
    return state


_NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16, torch.int64, torch.int32,
                 torch.int8, torch.uint8, torch.bool)


class _AliasingSavePlanner(DefaultSavePlanner):
    """Hands DCP exact-size aliases of CPU tensors that view a larger buffer.

    FBGEMM keeps all tables (and their Adagrad state) in one flat buffer, so every table
    is a view; DCP clones such views and keeps the clones until its file is written, which
    doubled the peak memory of a full-table checkpoint (+4 GB for Criteo's 33.76M rows).
    An alias over the same memory, whose storage is exactly the view, is written as is.
    """

    def transform_object(self, write_item: WriteItem, object: Any) -> Any:
        if (isinstance(object, torch.Tensor) and object.device.type == "cpu"
                and object.is_contiguous() and object.dtype in _NUMPY_DTYPES
                and object.untyped_storage().nbytes() != object.nbytes):
            object = torch.from_numpy(object.detach().numpy())
        return super().transform_object(write_item, object)


def _flat_items(state: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    items: dict[str, Any] = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            items.update(_flat_items(value, f"{name}."))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], Mapping):
            for index, item in enumerate(value):
                items.update(_flat_items(item, f"{name}.{index}."))
        else:
            items[name] = value
    return items


def _shape_mismatches(items: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    """`key: checkpoint [..] vs model [..]` of the model tensors whose global shapes differ."""
    found = []
    for key, value in items.items():
        stored = saved.get(key)
        size = getattr(stored, "size", None)
        if key.startswith("model.") and isinstance(size, torch.Size) and hasattr(value, "size"):
            if tuple(size) != tuple(value.size()):
                found.append(f"{key}: {list(size)} in the checkpoint, {list(value.size())} here")
    return found


def save_checkpoint(directory: str, step: int, model: nn.Module,
                    optimizer: Optional[torch.optim.Optimizer],
                    run_state: Mapping[str, Any], keep_last: Optional[int] = 3) -> str:
    """Save a checkpoint of step `step` (a collective: every rank calls it).

    Args:
        directory: the run's checkpoint directory (shared by the ranks).
        step: optimizer steps done.
        model: the `DistributedModelParallel` (its sharded `state_dict()`).
        optimizer: e.g. the `CombinedOptimizer` (fused + dense), or None.
        run_state: JSON-able dict: LR schedule, sampler RNG state, data position, config...
        keep_last: complete checkpoints to keep (None: all).

    Returns:
        The checkpoint's directory.
    """
    try:
        run_state_json = json.dumps({"format": FORMAT_VERSION, "step": step,
                                     "world_size": dist.get_world_size()
                                     if dist.is_initialized() else 1,
                                     "run_state": dict(run_state)}, indent=2)
    except TypeError as error:
        raise NASRecError(f"checkpoint run state is not JSON-able: {error}") from None
    final = step_directory(directory, step)
    staging = os.path.join(directory, f".staging_step_{step:09d}")
    if _rank() == 0:
        os.makedirs(directory, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
    barrier()
    dcp.save(_state(model, optimizer), checkpoint_id=staging,
             planner=_AliasingSavePlanner())
    barrier()
    if _rank() == 0:
        with open(os.path.join(staging, STATE_FILE), "w") as handle:
            handle.write(run_state_json)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(staging, final)
        if keep_last is not None:
            for _, old in list_checkpoints(directory)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("checkpoint saved: %s", final)
    barrier()
    return final


def read_run_state(path: str) -> dict[str, Any]:
    """The `state.json` of a checkpoint: {"format", "step", "world_size", "run_state"}."""
    file = os.path.join(path, STATE_FILE)
    try:
        with open(file) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise NASRecError(f"{file}: not found: '{path}' is not a complete checkpoint") from None
    except json.JSONDecodeError as error:
        raise NASRecError(f"{file}:{error.lineno}: invalid JSON: {error.msg}") from None


def load_checkpoint(path: str, model: nn.Module,
                    optimizer: Optional[torch.optim.Optimizer] = None,
                    collective: bool = True) -> dict[str, Any]:
    """Load a checkpoint into `model` (and `optimizer`) in place, resharding as needed.

    A collective: every rank calls it, unless `collective` is False (an unsharded model
    loaded by this process alone, e.g. each rank's own copy of a supernet to score from).
    The saving world size and plan may differ from this one's.

    Returns:
        The caller's run state given to `save_checkpoint`, plus `"step"`.
    """
    header = read_run_state(path)
    state = _state(model, optimizer)
    reader = SafeFileSystemReader(path)
    saved_metadata = reader.read_metadata().state_dict_metadata
    saved = set(saved_metadata)
    items = _flat_items(state)
    wanted = set(items)
    missing = sorted(wanted - saved)
    missing_model = [key for key in missing if key.startswith("model.")]
    if missing_model:
        raise NASRecError(f"{path}: checkpoint does not match the model: missing "
                          f"{missing_model[:5]}{' ...' if len(missing_model) > 5 else ''} "
                          "(capped and full tables differ in shape; search checkpoints do "
                          "not load into the final model)")
    mismatches = _shape_mismatches(items, saved_metadata)
    if mismatches:
        raise NASRecError(f"{path}: checkpoint does not match the model: {mismatches[0]}"
                          f"{f' (and {len(mismatches) - 1} more)' if len(mismatches) > 1 else ''}"
                          "; the tables follow the data's vocabularies: prepare the data with "
                          "--schema-from the data the model trained on")
    if missing and (_rank() == 0 or not collective):
        logger.warning("%s: %d optimizer entries not in the checkpoint, left as they are: %s",
                       path, len(missing), missing[:5])
    try:
        dcp.load(state, storage_reader=reader,
                 planner=SafeLoadPlanner(allow_partial_load=True), no_dist=not collective)
    except CheckpointException as error:
        raise _unreadable(path, error) from None
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optim"])
    run_state = dict(header.get("run_state", {}))
    run_state["step"] = int(header["step"])
    return run_state


def _unreadable(path: str, error: CheckpointException) -> NASRecError:
    """A `NASRecError` for a checkpoint DCP could not read (a rank's own error if it was one)."""
    failures = [failure[0] if isinstance(failure, tuple) else failure
                for failure in error.failures.values()]
    for failure in failures:
        if isinstance(failure, NASRecError):
            return failure
    cause = failures[0] if failures else error
    text = str(cause).strip().splitlines()
    detail = f"{type(cause).__name__}: {text[-1]}" if text else type(cause).__name__
    return NASRecError(f"{path}: cannot read the checkpoint, truncated or corrupt ({detail}); "
                       "delete it to go on from an earlier one")
