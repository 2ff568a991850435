"""Opening a checkpoint never executes what it holds: crafted metadata or items are refused
by name, before anything they name is called; truncated files are clear errors."""

from __future__ import annotations

import io
import os
import pickle

import pytest
import torch
from toy_training import toy_dmp, toy_schema

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.checkpoint import load_checkpoint, save_checkpoint
from nasrec_torchrec.train.checkpoint_reader import SafeLoadPlanner, read_metadata_file
from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.optimizers import build_optimizer


class _CreatesFile:
    """A pickle whose loading would create `path` (what a crafted `.metadata` could do)."""

    def __init__(self, path: str, call: object = None) -> None:
        self.path = path
        self.call = call or os.system

    def __reduce__(self):
        if self.call is os.system:
            return (os.system, (f"touch {self.path}",))
        return (self.call, (f"open({self.path!r}, 'w').close()",))


@pytest.fixture(scope="module")
def process_group():
    context = init_distributed("cpu", num_threads=1)
    yield context
    teardown(context)


@pytest.fixture(scope="module")
def checkpoint(process_group, tmp_path_factory):
    dmp = toy_dmp(toy_schema())
    directory = str(tmp_path_factory.mktemp("checkpoints"))
    return save_checkpoint(directory, 1, dmp, build_optimizer(dmp), {"seen": 1})


def _copy(checkpoint: str, tmp_path) -> str:
    import shutil

    target = str(tmp_path / "step_000000001")
    shutil.copytree(checkpoint, target)
    return target


@pytest.mark.parametrize("call", [os.system, eval, exec])
def test_crafted_metadata_is_refused_naming_the_file_and_nothing_runs(checkpoint, tmp_path, call):
    path = _copy(checkpoint, tmp_path)
    created = tmp_path / "created_by_payload"
    metadata = os.path.join(path, ".metadata")
    with open(metadata, "wb") as handle:
        pickle.dump(_CreatesFile(str(created), call), handle)
    with pytest.raises(NASRecError, match=r"\.metadata: refused: it asks for '[a-z.]+\.(system|"
                       r"eval|exec)'") as error:
        load_checkpoint(path, toy_dmp(toy_schema()))
    assert metadata in str(error.value)
    assert not created.exists()


def test_truncated_metadata_and_shards_are_clear_errors(checkpoint, tmp_path):
    path = _copy(checkpoint, tmp_path)
    metadata = os.path.join(path, ".metadata")
    with open(metadata, "rb") as handle:
        data = handle.read()
    with open(metadata, "wb") as handle:
        handle.write(data[:len(data) // 2])
    with pytest.raises(NASRecError, match="truncated or corrupt checkpoint metadata"):
        read_metadata_file(metadata)

    path = _copy(checkpoint, tmp_path / "shards")
    shard = next(name for name in os.listdir(path) if name.endswith(".distcp"))
    with open(os.path.join(path, shard), "r+b") as handle:
        handle.truncate(100)
    dmp = toy_dmp(toy_schema())
    with pytest.raises(NASRecError, match="cannot read the checkpoint, truncated or corrupt"):
        load_checkpoint(path, dmp, build_optimizer(dmp))


def test_real_metadata_loads(checkpoint):
    dmp = toy_dmp(toy_schema(), seed=3)
    assert load_checkpoint(checkpoint, dmp, build_optimizer(dmp))["seen"] == 1


def test_non_tensor_items_are_read_without_executing(tmp_path):
    created = tmp_path / "created_by_item"
    crafted = io.BytesIO()
    torch.save({"lr": _CreatesFile(str(created))}, crafted)
    crafted.seek(0)
    planner = SafeLoadPlanner()
    planner.flatten_state_dict = False
    planner.state_dict = {}

    class Item:
        class dest_index:
            fqn = "optim.lr"

    with pytest.raises(NASRecError, match="checkpoint item 'optim.lr': refused"):
        planner.load_bytes(Item, crafted)
    assert not created.exists()
    safe = io.BytesIO()
    torch.save({"lr": 0.04, "betas": (0.9, 0.99)}, safe)
    safe.seek(0)
    planner.load_bytes(Item, safe)
    assert planner.state_dict["optim.lr"] == {"lr": 0.04, "betas": (0.9, 0.99)}


def test_tables_of_other_sizes_are_named_before_anything_loads(checkpoint):
    # e.g. data prepared with other vocabularies, once the training data is gone
    other = toy_dmp(toy_schema((7, 40, 300, 1500)))
    with pytest.raises(NASRecError, match=r"checkpoint does not match the model: "
                       r"model\..*c3\.weight: \[1000, 4\] in the checkpoint, \[1500, 4\] here; "
                       r".*--schema-from"):
        load_checkpoint(checkpoint, other)
