"""A view of a prepared dataset whose training split is several splits, without copying data.

The paper's final model trains on train+val. The loader reads one split directory, so the
view is a directory holding a copy of `schema.json` and, per split, symbolic links to the
original Parquet shards: `VIEW/train/part-00000.parquet -> DATA/train/part-00000.parquet`,
`VIEW/train/part-00001.parquet -> DATA/val/part-00000.parquet`, ...; the other splits of the
dataset are linked as they are (so `VIEW/test` is `DATA/test`). The loader's shard order is
the link names' order, so the view's row order is train's then val's.

Example::

    view = combined_split_view("data/criteo", ["train", "val"], "runs/final/train_val_data")
    ParquetBatchLoader(view, "train", 256, shuffle=True)  # the rows of train and val
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Sequence

from nasrec_torchrec.artifacts import SCHEMA_FILE, write_json
from nasrec_torchrec.data.schema import Schema
from nasrec_torchrec.data.shards import shard_paths
from nasrec_torchrec.errors import NASRecError

VIEW_FILE = "view.json"


def has_split(data_dir: str, split: str) -> bool:
    """True when `data_dir/split` holds at least one Parquet shard with rows."""
    import pyarrow.parquet as pq

    return any(pq.ParquetFile(path).metadata.num_rows > 0
               for path in shard_paths(os.path.join(data_dir, split)))


def combined_split_view(data_dir: str, splits: Sequence[str], view_dir: str,
                        name: str = "train") -> str:
    """Make (or refresh) `view_dir`: `data_dir` with split `name` = the rows of `splits`.

    Args:
        data_dir: a prepared dataset.
        splits: the splits whose shards form the view's split `name`, in order.
        view_dir: the directory to create (replaced if it is a view of another combination).
        name: the combined split's name in the view.

    Returns:
        `view_dir`, usable wherever a prepared dataset is.
    """
    data_dir = os.path.abspath(data_dir)
    schema = Schema.load(data_dir)
    sources = [(split, path) for split in splits
               for path in shard_paths(os.path.join(data_dir, split))]
    missing = [split for split in splits if not shard_paths(os.path.join(data_dir, split))]
    if missing:
        raise NASRecError(f"{data_dir}: no Parquet shards in split(s) {missing} "
                          f"(splits: {', '.join(schema.splits) or 'none'})")
    description = {"source": data_dir, "splits": list(splits), "name": name}
    marker = os.path.join(view_dir, VIEW_FILE)
    if os.path.exists(marker):
        with open(marker) as handle:
            if json.load(handle) == description:
                return view_dir
        shutil.rmtree(view_dir)
    staging = view_dir.rstrip("/") + ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, name))
    for index, (_, path) in enumerate(sources):
        os.symlink(path, os.path.join(staging, name, f"part-{index:05d}.parquet"))
    for split in schema.splits:
        if split != name and os.path.isdir(os.path.join(data_dir, split)):
            os.symlink(os.path.join(data_dir, split), os.path.join(staging, split))
    with open(os.path.join(data_dir, SCHEMA_FILE)) as handle:
        schema_data = json.load(handle)
    counts = dict(schema_data.get("splits", {}))
    counts[name] = sum(int(counts.get(split, 0)) for split in splits)
    schema_data["splits"] = counts
    schema_data.setdefault("extra", {})["combined_view"] = description
    write_json(os.path.join(staging, SCHEMA_FILE), schema_data)
    write_json(os.path.join(staging, VIEW_FILE), description)
    if os.path.exists(view_dir):
        shutil.rmtree(view_dir)
    os.replace(staging, view_dir)
    return view_dir
