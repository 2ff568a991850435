"""Parquet shards of one split: `split/part-00000.parquet`, ... with fixed-size row groups.

Columns: the label as float32, each dense feature as float32 (already transformed), each sparse
feature as int64 full-vocabulary rows. Row groups hold `row_group_rows` rows (64Ki by default,
the unit the loader reads and shuffles); a shard holds `shard_rows` rows (1Mi by default).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 65_536
SHARD_ROWS = 1 << 20


def shard_schema(label: str, dense: list[str], sparse: list[str]) -> pa.Schema:
    """The Arrow schema of a prepared shard."""
    return pa.schema([pa.field(label, pa.float32()),
                      *(pa.field(name, pa.float32()) for name in dense),
                      *(pa.field(name, pa.int64()) for name in sparse)])


def shard_table(schema: pa.Schema, labels: np.ndarray, dense: np.ndarray,
                rows: np.ndarray) -> pa.Table:
    """Rows `[n]` labels, `[n, Dn]` dense, `[n, F]` sparse rows as a table of `schema`."""
    arrays = [pa.array(labels.astype(np.float32))]
    arrays += [pa.array(np.ascontiguousarray(dense[:, j], dtype=np.float32))
               for j in range(dense.shape[1])]
    arrays += [pa.array(np.ascontiguousarray(rows[:, j], dtype=np.int64))
               for j in range(rows.shape[1])]
    return pa.Table.from_arrays(arrays, schema=schema)


def shard_paths(directory: str) -> list[str]:
    """The shards of a split directory, in order."""
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, name) for name in sorted(os.listdir(directory))
            if name.startswith("part-") and name.endswith(".parquet")]


class ShardWriter:
    """Appends tables to the shards of one split, cutting row groups and shards at fixed sizes.

    Args:
        directory: the split directory (created).
        schema: `shard_schema(...)`.
        row_group_rows: rows per Parquet row group.
        shard_rows: rows per shard file (a multiple of `row_group_rows` is best).
    """

    def __init__(self, directory: str, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS,
                 shard_rows: int = SHARD_ROWS) -> None:
        self.directory = directory
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.shard_rows = shard_rows
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_index = 0
        self._shard_written = 0
        os.makedirs(directory, exist_ok=True)

    def write(self, table: pa.Table) -> None:
        """Buffer `table` and flush every full row group."""
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def close(self) -> int:
        """Flush the last partial row group, close the shard, return the rows written.

        A split that received no rows still gets one empty shard, so that it exists.
        """
        if self._pending_rows:
            self._flush(self._pending_rows)
        if self.rows == 0 and self._shard_index == 0:
            path = os.path.join(self.directory, "part-00000.parquet")
            pq.write_table(self.schema.empty_table(), path)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.rows

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self._pending).combine_chunks()
        head, tail = table.slice(0, rows), table.slice(rows)
        self._pending, self._pending_rows = ([tail] if tail.num_rows else []), tail.num_rows
        while head.num_rows:
            if self._writer is None:
                path = os.path.join(self.directory, f"part-{self._shard_index:05d}.parquet")
                self._writer = pq.ParquetWriter(path, self.schema)
            take = min(head.num_rows, self.shard_rows - self._shard_written)
            self._writer.write_table(head.slice(0, take), row_group_size=take)
            head = head.slice(take)
            self.rows += take
            self._shard_written += take
            if self._shard_written >= self.shard_rows:
                self._writer.close()
                self._writer = None
                self._shard_index += 1
                self._shard_written = 0
