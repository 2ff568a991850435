"""Streaming reader of a user's Parquet file with a column mapping, batch by batch."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nasrec_torchrec.data.fields import BadRows, RawChunk, parse_dense, parse_labels, parse_sparse
from nasrec_torchrec.data.text_reader import check_unique_columns
from nasrec_torchrec.errors import NASRecError, located

BATCH_ROWS = 65_536


def parquet_columns(path: str) -> list[str]:
    """Column names of a Parquet file."""
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (OSError, ValueError) as error:
        raise NASRecError(f"{path}: not a readable Parquet file: {error}") from None


def read_parquet(path: str, label: str | None, dense: list[str], sparse: list[str],
                 on_bad_row: str) -> Iterator[RawChunk]:
    """Parse `path` in batches; a "line" in messages is the 1-based row number. With
    `label` None the file has no label column and the chunks' labels are None."""
    names = parquet_columns(path)
    check_unique_columns(names, path, None)
    parquet = pq.ParquetFile(path)
    wanted = [*([label] if label else []), *dense, *sparse]
    for name in wanted:
        if name not in names:
            raise located(f"unknown column (the file has {', '.join(names)})", path, None, name)
        kind = parquet.schema_arrow.field(name).type
        if pa.types.is_nested(kind):
            raise located(f"a column of {kind}: prepare takes one value per row and column "
                          "(flatten it, or leave it out with --sparse-columns)", path, None, name)
    if parquet.metadata.num_rows == 0:
        raise located("empty file: no data rows", path)
    first_row = 1
    for batch in _batches(parquet, path, wanted):
        n = batch.num_rows
        lines = np.arange(first_row, first_row + n, dtype=np.int64)
        first_row += n
        bad = BadRows(path, lines, on_bad_row)
        labels = parse_labels(batch.column(label), label, bad) if label else None
        dense_values = parse_dense([batch.column(name) for name in dense], dense, bad, n)
        keys = parse_sparse([batch.column(name) for name in sparse], sparse, bad, n)
        bad.raise_first()
        if bad.faults:
            keep = bad.keep_mask(n)
            dense_values, keys, lines = dense_values[keep], keys[keep], lines[keep]
            labels = labels[keep] if labels is not None else None
        yield RawChunk(path, lines, labels, dense_values, keys, skipped=len(bad.faults))


def _batches(parquet: pq.ParquetFile, path: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The file's batches; a file that breaks off or is corrupt is a `NASRecError`."""
    batches = parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as error:
            raise NASRecError(f"{path}: cannot read the Parquet file: {error}") from None
        yield batch
