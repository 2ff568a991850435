"""Streaming reader of delimited text files (TSV/CSV) into `RawChunk`s, block by block.

A file is read in blocks of whole lines (`block_bytes`, default 16 MiB) so memory stays
O(block) whatever the file size; each block is parsed by pyarrow's CSV parser into string
columns, then checked and converted by `fields`. Line numbers are exact: the first line of a
block is counted in Python and pyarrow reports the line of every row with a wrong field count.
Quoted fields may not span lines (no CTR log does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from nasrec_torchrec.data.fields import BadRows, RawChunk, parse_dense, parse_labels, parse_sparse
from nasrec_torchrec.errors import located

DEFAULT_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class TextLayout:
    """How to read one delimited text format.

    Args:
        delimiter: field separator.
        quoted: whether `"` quotes fields (CSV) or is an ordinary byte (TSV).
        columns: the column order of a headerless file; None = the header names the columns.
        header: "never", "always" or "auto" (a first line equal to the joined `columns`).
        label: label column (None: the files have none, the chunks' labels are None);
            `label_rule` "binary" (0/1) or "count" (> 0 is a click).
        dense: dense columns; `sparse`: categorical columns, in output order.
        allowed_bytes: optional 256-entry table of the bytes a categorical token may hold.
        token_what: what a token is, for error messages ("hex id").
    """

    delimiter: str
    quoted: bool
    columns: tuple[str, ...] | None
    header: str
    label: str | None
    dense: tuple[str, ...]
    sparse: tuple[str, ...]
    label_rule: str = "binary"
    allowed_bytes: np.ndarray | None = None
    token_what: str = "token"


def read_header(path: str, delimiter: str) -> list[str]:
    """Column names on the first line of `path` (empty list for an empty file)."""
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    return [name.strip().strip('"') for name in first.split(delimiter)] if first else []


def _blocks(path: str, skip_first_line: bool, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """`(number of the block's first line, block of whole lines)` over the file."""
    line = 1
    with open(path, "rb") as handle:
        if skip_first_line:
            handle.readline()
            line = 2
        rest = b""
        while True:
            data = handle.read(block_bytes)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[:cut + 1], data[cut + 1:]
            yield line, block
            line += block.count(b"\n")
        if rest.strip(b"\r\n"):
            yield line, rest


def _has_header(path: str, layout: TextLayout) -> bool:
    if layout.header == "never":
        return False
    if layout.header == "always":
        return True
    return read_header(path, layout.delimiter) == list(layout.columns or ())


def read_text(path: str, layout: TextLayout, on_bad_row: str,
              block_bytes: int = DEFAULT_BLOCK_BYTES,
              extra_sparse: Callable[[np.ndarray, dict[str, pa.Array]], np.ndarray] | None = None,
              ) -> Iterator[RawChunk]:
    """Parse `path` into chunks of one block each.

    Args:
        path: the file.
        layout: its format.
        on_bad_row: "error" (raise at the first faulty row) or "skip" (drop and count).
        block_bytes: bytes per block.
        extra_sparse: optional `(keys [n, F], columns) -> keys [n, F + k]` appending derived
            categorical features (KDD's gender and age from the user profile).
    """
    header = _has_header(path, layout)
    columns = list(layout.columns) if layout.columns else read_header(path, layout.delimiter)
    if not columns:
        raise located("empty file: no data rows", path, 1)
    wanted = [*([layout.label] if layout.label else []), *layout.dense, *layout.sparse]
    for name in wanted:
        if name not in columns:
            raise located(f"unknown column (the file has {', '.join(columns)})", path, 1, name)
    rows_seen = 0
    for first_line, block in _blocks(path, header, block_bytes):
        # pyarrow knows the line of a faulty row only when parsing on one thread: parse on
        # all threads, and again on one when the block has faulty rows.
        table, wrong_width = _parse(block, first_line, columns, wanted, layout, threads=True)
        if wrong_width:
            table, wrong_width = _parse(block, first_line, columns, wanted, layout, threads=False)
        if wrong_width and on_bad_row == "error":
            line, actual = wrong_width[0]
            raise located(f"wrong field count: expected {len(columns)} fields, got {actual}",
                          path, line)
        block_lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        lines = np.arange(first_line, first_line + block_lines, dtype=np.int64)
        if wrong_width:
            lines = lines[~np.isin(lines, [line for line, _ in wrong_width])]
        chunk = _chunk(path, table, lines, layout, on_bad_row, len(wrong_width), extra_sparse)
        rows_seen += len(chunk) + chunk.skipped
        yield chunk
    if rows_seen == 0:
        raise located("empty file: no data rows", path, 2 if header else 1)


def _parse(block: bytes, first_line: int, columns: list[str], wanted: list[str],
           layout: TextLayout, threads: bool) -> tuple[pa.Table, list[tuple[int, int]]]:
    """One block as string columns, and `(line, field count)` of each row of wrong width."""
    wrong_width: list[tuple[int, int]] = []

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        line = first_line + row.number - 1 if row.number is not None else 0
        wrong_width.append((line, row.actual_columns))
        return "skip"

    table = pa_csv.read_csv(
        pa.py_buffer(block),
        read_options=pa_csv.ReadOptions(column_names=columns, use_threads=threads,
                                        block_size=(1 << 20) if threads else len(block) + 1),
        parse_options=pa_csv.ParseOptions(
            delimiter=layout.delimiter, quote_char='"' if layout.quoted else False,
            invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in columns},
            include_columns=wanted, strings_can_be_null=True, quoted_strings_can_be_null=True),
    )
    return table, wrong_width


def _chunk(path: str, table: pa.Table, lines: np.ndarray, layout: TextLayout, on_bad_row: str,
           skipped: int, extra_sparse: Callable[[np.ndarray, dict[str, pa.Array]], np.ndarray]
           | None) -> RawChunk:
    """Check and convert one parsed block; faulty rows raise or are dropped."""
    n = table.num_rows
    bad = BadRows(path, lines, on_bad_row)
    labels = parse_labels(table[layout.label], layout.label, bad, layout.label_rule) \
        if layout.label else None
    dense = parse_dense([table[name] for name in layout.dense], list(layout.dense), bad, n)
    keys = parse_sparse([table[name] for name in layout.sparse], list(layout.sparse), bad, n,
                        layout.allowed_bytes, layout.token_what)
    bad.raise_first()
    if extra_sparse is not None:
        keys = extra_sparse(keys, {name: table[name] for name in table.column_names})
    if bad.faults:
        keep = bad.keep_mask(n)
        dense, keys, lines = dense[keep], keys[keep], lines[keep]
        labels = labels[keep] if labels is not None else None
    return RawChunk(path, lines, labels, dense, keys, skipped=skipped + len(bad.faults))
