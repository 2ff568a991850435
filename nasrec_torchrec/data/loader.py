"""Prepared Parquet shards -> `torchrec.datasets.utils.Batch`es, sharded over ranks.

Order. One global row order per (seed, epoch): the split's row groups (in shard order, or a
seeded permutation when shuffling) are grouped into windows of at least `shuffle_buffer` rows
(one row group per window without shuffling); the rows of each window are permuted with a
generator seeded by (seed, epoch, window). Whole windows are read and converted at once.

Ranks. The order is cut into global batches of `world_size * batch_size` rows; rank r yields
rows `[r * batch_size, (r + 1) * batch_size)` of each, so R ranks with batch b together see
exactly what one rank with batch R*b sees. The last, partial global batch of n rows is dropped
with `drop_last`; otherwise it is split in rank order as evenly as possible (rank r gets
`n // R + (r < n % R)` rows, possibly 0), so every row is yielded exactly once over the ranks
and every rank yields the same number of batches (`len(loader)`): sharded embedding lookups
are collectives, so all ranks must step together, even on an empty batch.

Resuming. `start_at(k)` makes the next iteration start at this rank's batch k of the epoch:
the loader skips to the window holding global row `k * world_size * batch_size`, so a resumed
epoch yields exactly the batches an uninterrupted one would have from k on.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq
import torch
from torchrec.datasets.utils import Batch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.data.schema import Schema, table_row
from nasrec_torchrec.data.shards import shard_paths
from nasrec_torchrec.errors import NASRecError

DEFAULT_SHUFFLE_BUFFER = 262_144


@dataclass
class _Rows:
    """Decoded rows: labels `[n]` float32, dense `[n, Dn]` float32, sparse table rows `[n, F]`."""

    labels: np.ndarray
    dense: np.ndarray
    sparse: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> "_Rows":
        return _Rows(self.labels[index], self.dense[index], self.sparse[index])

    @staticmethod
    def concat(parts: list["_Rows"]) -> "_Rows":
        if len(parts) == 1:
            return parts[0]
        return _Rows(np.concatenate([p.labels for p in parts]),
                     np.concatenate([p.dense for p in parts]),
                     np.concatenate([p.sparse for p in parts]))


class ParquetBatchLoader:
    """Iterates over one split of a prepared dataset as TorchRec `Batch`es.

    Args:
        data_dir: a prepared dataset (`nasrec prepare` / `nasrec synth`).
        split: "train", "val", "test" or another prepared split.
        batch_size: rows per batch on this rank.
        embedding_cap: table size cap; sparse ids are the rows of tables of
            `schema.table_rows(name, embedding_cap)` rows (None = full tables).
        shuffle: seeded row-group permutation plus window shuffle (see the module doc).
        shuffle_buffer: rows per shuffle window.
        seed: the seed of the order; the epoch (`set_epoch`) varies it.
        drop_last: drop the last partial global batch.
        rank, world_size: this process and the number of processes.
        prefetch: batches prepared ahead by a background thread (0 = no thread).
        max_rows: read only the first `max_rows` rows of the split's order, as if the split
            ended there (None: all).

    Yields `Batch(dense_features [B, Dn] float32, sparse_features KJT (one id per feature
    per row, keys in schema order), labels [B] float32)`.

    Example::

        loader = ParquetBatchLoader("data/criteo", "train", 4096, embedding_cap=500_000,
                                    shuffle=True, rank=rank, world_size=world_size)
        for epoch in range(epochs):
            loader.set_epoch(epoch)
            for batch in loader:
                loss, _ = model(batch)
    """

    def __init__(self, data_dir: str, split: str, batch_size: int, *,
                 embedding_cap: int | None = None, shuffle: bool = False,
                 shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1,
                 prefetch: int = 2, max_rows: int | None = None) -> None:
        if batch_size <= 0:
            raise NASRecError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < world_size:
            raise NASRecError(f"rank {rank} is not in [0, {world_size})")
        self.schema = Schema.load(data_dir)
        self.files = shard_paths(os.path.join(data_dir, split))
        if not self.files:
            raise NASRecError(f"{os.path.join(data_dir, split)}: no Parquet shards "
                              f"(splits: {', '.join(self.schema.splits) or 'none'})")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self.epoch = 0
        self._start_batch = 0
        self.feature_names: list[str] = self.schema.sparse_names
        self.table_rows: list[int] = [self.schema.table_rows(name, embedding_cap)
                                      for name in self.feature_names]
        self.columns = [self.schema.label, *self.schema.dense, *self.feature_names]
        self.row_groups: list[tuple[int, int, int]] = []
        for file_index, path in enumerate(self.files):
            metadata = pq.ParquetFile(path).metadata
            self.row_groups += [(file_index, group, metadata.row_group(group).num_rows)
                                for group in range(metadata.num_row_groups)]
        self.num_rows = sum(rows for _, _, rows in self.row_groups)
        if max_rows is not None:
            self.num_rows = min(self.num_rows, max_rows)
        self.split_dir = os.path.join(data_dir, split)

    def require_rows(self, purpose: str) -> "ParquetBatchLoader":
        """This loader; a `NASRecError` naming the split when it has no rows (`purpose`:
        what they are for, e.g. "the evaluation (--eval-split)")."""
        if self.num_rows == 0:
            raise NASRecError(f"{self.split_dir}: the split has no rows, nothing for {purpose}")
        return self

    @property
    def global_batch_size(self) -> int:
        """Rows per step over all ranks."""
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        full, remainder = divmod(self.num_rows, self.global_batch_size)
        return full + (1 if remainder and not self.drop_last else 0)

    def set_epoch(self, epoch: int) -> None:
        """Select the order of `epoch` (a deterministic function of seed and epoch)."""
        self.epoch = epoch

    def start_at(self, batch_index: int) -> None:
        """Make the next iteration start at this rank's batch `batch_index` of the epoch."""
        if not 0 <= batch_index <= len(self):
            raise NASRecError(f"start_at: batch {batch_index} is not in [0, {len(self)}]")
        self._start_batch = batch_index

    def __iter__(self) -> Iterator[Batch]:
        start, self._start_batch = self._start_batch, 0
        batches = self._batches(start)
        return _prefetched(batches, self.prefetch) if self.prefetch > 0 else batches

    def _windows(self) -> list[list[int]]:
        """Row-group indices of each window, in epoch order."""
        order = np.arange(len(self.row_groups))
        if not self.shuffle:
            return [[int(group)] for group in order]
        order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        windows: list[list[int]] = [[]]
        rows = 0
        for group in order:
            if rows >= self.shuffle_buffer:
                windows.append([])
                rows = 0
            windows[-1].append(int(group))
            rows += self.row_groups[group][2]
        return windows

    def _read(self, window_index: int, groups: list[int], handles: dict[int, pq.ParquetFile]
              ) -> _Rows:
        """Decode a window's row groups (rows permuted when shuffling)."""
        parts = []
        for group in groups:
            file_index, row_group, _ = self.row_groups[group]
            if file_index not in handles:
                handles[file_index] = pq.ParquetFile(self.files[file_index])
            table = handles[file_index].read_row_group(row_group, columns=self.columns)
            n = table.num_rows
            labels = table.column(self.schema.label).to_numpy().astype(np.float32)
            dense = np.empty((n, len(self.schema.dense)), dtype=np.float32)
            for j, name in enumerate(self.schema.dense):
                dense[:, j] = table.column(name).to_numpy()
            sparse = np.empty((n, len(self.feature_names)), dtype=np.int64)
            for k, (name, rows) in enumerate(zip(self.feature_names, self.table_rows)):
                sparse[:, k] = table_row(table.column(name).to_numpy(), rows)
            parts.append(_Rows(labels, dense, sparse))
        rows = _Rows.concat(parts)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, window_index])
            rows = rows.take(rng.permutation(len(rows)))
        return rows

    def _rank_slice(self, rows: int) -> slice:
        """This rank's rows of a global batch of `rows` rows."""
        if rows == self.global_batch_size:
            return slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        base, extra = divmod(rows, self.world_size)
        begin = self.rank * base + min(self.rank, extra)
        return slice(begin, begin + base + (1 if self.rank < extra else 0))

    def _batches(self, start_batch: int) -> Iterator[Batch]:
        """This rank's batches from `start_batch` on."""
        step = self.global_batch_size
        skip = start_batch * step
        handles: dict[int, pq.ParquetFile] = {}
        carry: list[_Rows] = []
        carried = 0
        window_start = 0
        for window_index, groups in enumerate(self._windows()):
            if window_start >= self.num_rows:  # the split ends at max_rows
                break
            window_rows = sum(self.row_groups[group][2] for group in groups)
            if window_start + window_rows <= skip:
                window_start += window_rows
                continue
            rows = self._read(window_index, groups, handles)
            if window_start + window_rows > self.num_rows:
                rows = rows.take(slice(0, self.num_rows - window_start))
                window_rows = len(rows)
            if window_start < skip:
                rows = rows.take(slice(skip - window_start, None))
            window_start += window_rows
            carry.append(rows)
            carried += len(rows)
            if carried < step:
                continue
            rows = _Rows.concat(carry)
            full = len(rows) // step * step
            for begin in range(0, full, step):
                yield self._batch(rows.take(slice(begin, begin + step)), step)
            carry = [rows.take(slice(full, None))]
            carried = len(rows) - full
        if carried and not self.drop_last:
            yield self._batch(_Rows.concat(carry), carried)

    def _batch(self, rows: _Rows, global_rows: int) -> Batch:
        """This rank's `Batch` of a global batch."""
        mine = rows.take(self._rank_slice(global_rows))
        return rows_batch(self.feature_names, mine.dense, mine.sparse, mine.labels)


def rows_batch(feature_names: list[str], dense: np.ndarray, sparse: np.ndarray,
               labels: np.ndarray) -> Batch:
    """A `Batch` of n rows: dense `[n, Dn]` float32, sparse table rows `[n, F]` int64 (one id
    per feature per row, columns in `feature_names` order), labels `[n]` float32."""
    size = len(labels)
    values = torch.from_numpy(np.ascontiguousarray(sparse.T).reshape(-1))
    sparse_features = KeyedJaggedTensor(
        keys=feature_names, values=values,
        lengths=torch.ones(size * len(feature_names), dtype=torch.int32), stride=size,
    )
    return Batch(dense_features=torch.from_numpy(np.ascontiguousarray(dense)),
                 sparse_features=sparse_features,
                 labels=torch.from_numpy(np.ascontiguousarray(labels)))


_END = object()


def _prefetched(batches: Iterator[Batch], depth: int) -> Iterator[Batch]:
    """Run `batches` in a daemon thread, `depth` items ahead; errors re-raise in the consumer."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_END)
        except BaseException as error:  # forwarded to the consumer
            put(error)

    thread = threading.Thread(target=produce, name="nasrec-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()

