"""Reading a checkpoint without executing anything it holds.

`torch.distributed.checkpoint`'s `FileSystemReader` unpickles a checkpoint's `.metadata`
with plain `pickle`, and its `DefaultLoadPlanner` reads non-tensor items with
`torch.load(weights_only=False)`: a run directory whose files were replaced by crafted
pickles would run their payload when loaded. Run directories are shared and copied from
clusters, so loading one must never do that:

- `SafeFileSystemReader` unpickles the metadata admitting only the types a checkpoint's
  metadata is made of (DCP's metadata dataclasses, `torch.Size`, dtypes, layouts, paths);
  any other global is refused with a `NASRecError` naming the file, before it is called.
- `SafeLoadPlanner` reads non-tensor items with `torch.load(weights_only=True)`.

Tensors are read by DCP with `weights_only=True` already.

Example::

    reader = SafeFileSystemReader("runs/x/checkpoints/step_000000100")
    metadata = reader.read_metadata()  # NASRecError for a crafted or truncated file
    dcp.load(state, storage_reader=reader, planner=SafeLoadPlanner(allow_partial_load=True))
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import torch
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import ReadItem

from nasrec_torchrec.errors import NASRecError

# module -> the names a checkpoint's metadata may ask for (classes and one torch helper)
_METADATA_GLOBALS: dict[str, frozenset[str]] = {
    "torch.distributed.checkpoint.metadata": frozenset({
        "Metadata", "StorageMeta", "MetadataIndex", "TensorStorageMetadata",
        "BytesStorageMetadata", "ChunkStorageMetadata", "TensorProperties",
        "_MEM_FORMAT_ENCODING"}),
    "torch.distributed.checkpoint.filesystem": frozenset({"_StorageInfo"}),
    "torch.serialization": frozenset({"_get_layout"}),
    "torch": frozenset({"Size"}),
    "pathlib": frozenset({"PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"}),
    "pathlib._local": frozenset({"PosixPath", "PurePosixPath", "WindowsPath",
                                 "PureWindowsPath"}),
    "collections": frozenset({"OrderedDict"}),
}


class _MetadataUnpickler(pickle.Unpickler):
    """Admits the checkpoint metadata types only (`find_class` is where pickle looks up every
    callable it would call)."""

    def __init__(self, stream: Any, file: str) -> None:
        super().__init__(stream)
        self.file = file

    def find_class(self, module: str, name: str) -> Any:
        if name in _METADATA_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None),
                                            (torch.dtype, torch.layout, torch.memory_format)):
            return getattr(torch, name)
        raise NASRecError(f"{self.file}: refused: it asks for '{module}.{name}', which is not "
                          "a checkpoint metadata type (a crafted or foreign file); nothing in "
                          "it was run")


def read_metadata_file(file: str) -> Metadata:
    """The `Metadata` unpickled from `file` with the checkpoint types only.

    Raises `NASRecError` naming the file when it is missing, truncated, or asks for any
    other type (nothing it names is called).
    """
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise NASRecError(f"{file}: not found: not a complete checkpoint") from None
    except OSError as error:
        raise NASRecError(f"{file}: cannot read: {error.strerror}") from None
    try:
        metadata = _MetadataUnpickler(io.BytesIO(data), file).load()
    except NASRecError:
        raise
    except Exception as error:  # any malformed pickle: EOFError, UnpicklingError, ...
        raise NASRecError(f"{file}: truncated or corrupt checkpoint metadata "
                          f"({type(error).__name__}: {error})") from None
    if not isinstance(metadata, Metadata):
        raise NASRecError(f"{file}: not a checkpoint's metadata (holds a "
                          f"{type(metadata).__name__})")
    return metadata


class SafeFileSystemReader(FileSystemReader):
    """DCP's file reader whose metadata is read by `read_metadata_file`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        path = os.fspath(self._get_metadata_path(kwargs.get("rank")))
        metadata = read_metadata_file(path)
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class SafeLoadPlanner(DefaultLoadPlanner):
    """DCP's default load planner reading non-tensor items with `weights_only=True`."""

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        try:
            loaded = torch.load(value, weights_only=True)
        except pickle.UnpicklingError as error:
            raise NASRecError(f"checkpoint item '{read_item.dest_index.fqn}': refused: "
                              f"{str(error).splitlines()[0]}") from None
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn],
                        loaded)
        else:
            self.state_dict[read_item.dest_index.fqn] = loaded
