"""Streaming reader of delimited text files (TSV/CSV) into `RawChunk`s, block by block.

A file is read in blocks of whole lines (`block_bytes`, default 16 MiB) so memory stays
O(block) whatever the file size; each block is parsed by pyarrow's CSV parser into string
columns, then checked and converted by `fields`. Line numbers are exact: the first line of a
block is counted in Python and pyarrow reports the line of every row with a wrong field count.
Quoted fields may not span lines (no CTR log does). A gzip-compressed file (raw Criteo and
Avazu logs ship as `.gz`) is decompressed as it is read, whatever its name (`open_input`);
text must be UTF-8, so a binary file is refused at its first line that is not.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import IO, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from nasrec_torchrec.data.fields import BadRows, RawChunk, parse_dense, parse_labels, parse_sparse
from nasrec_torchrec.errors import NASRecError, located

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


GZIP_MAGIC = b"\x1f\x8b"


def open_input(path: str) -> IO[bytes]:
    """`path` opened for reading bytes, decompressed if it is gzip (by its first bytes)."""
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise NASRecError(f"{path}: cannot read: {error.strerror}") from None
    if handle.read(2) == GZIP_MAGIC:
        handle.close()
        return gzip.open(path, "rb")
    handle.seek(0)
    return handle


def _read(handle: IO[bytes], path: str, size: int = -1) -> bytes:
    try:
        return handle.read(size)
    except (OSError, EOFError, zlib.error) as error:  # gzip: truncated or corrupt
        raise NASRecError(f"{path}: cannot decompress: {error}") from None


def _check_text(block: bytes, path: str, first_line: int) -> None:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + block.count(b"\n", 0, error.start)
        raise located(f"not UTF-8 text (byte {block[error.start]:#04x}): a binary file? "
                      "(gzip-compressed text is read as such)", path, line) from None


def read_header(path: str, delimiter: str) -> list[str]:
    """Column names on the first line of `path` (empty list for an empty file)."""
    with open_input(path) as handle:
        first = _read(handle, path, 1 << 20).split(b"\n", 1)[0]
    _check_text(first, path, 1)
    text = first.decode("utf-8").rstrip("\r\n")
    return [name.strip().strip('"') for name in text.split(delimiter)] if text else []


def _blocks(path: str, skip_first_line: bool, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """`(number of the block's first line, block of whole lines)` over the file."""
    line = 1
    with open_input(path) as handle:
        if skip_first_line:
            handle.readline()
            line = 2
        rest = b""
        while True:
            data = _read(handle, path, block_bytes)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[:cut + 1], data[cut + 1:]
            _check_text(block, path, line)
            yield line, block
            line += block.count(b"\n")
        if rest.strip(b"\r\n"):
            _check_text(rest, path, line)
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
    check_unique_columns(columns, path, 1)
    wanted = [*([layout.label] if layout.label else []), *layout.dense, *layout.sparse]
    for name in wanted:
        if name not in columns:
            raise located(f"unknown column (the file has {', '.join(columns)})", path, 1, name)
    rows_seen = 0
    for first_line, block in _blocks(path, header, block_bytes):
        # pyarrow knows the line of a faulty row only when parsing on one thread: parse on
        # all threads, and again on one when the block has faulty rows.
        table, wrong_width = _parse(path, block, first_line, columns, wanted, layout, True)
        if wrong_width:
            table, wrong_width = _parse(path, block, first_line, columns, wanted, layout, False)
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


def check_unique_columns(columns: list[str], path: str, line: int | None) -> None:
    """Raise naming the first column name `columns` holds twice."""
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise located("the column name appears twice; names must be unique", path, line,
                          name)
        seen.add(name)


def _parse(path: str, block: bytes, first_line: int, columns: list[str], wanted: list[str],
           layout: TextLayout, threads: bool) -> tuple[pa.Table, list[tuple[int, int]]]:
    """One block as string columns, and `(line, field count)` of each row of wrong width."""
    wrong_width: list[tuple[int, int]] = []

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        line = first_line + row.number - 1 if row.number is not None else 0
        wrong_width.append((line, row.actual_columns))
        return "skip"

    try:
        table = _read_csv(block, columns, wanted, layout, threads, on_invalid)
    except pa.ArrowInvalid as error:
        raise located(f"cannot parse: {str(error).splitlines()[0]}", path, first_line) from None
    return table, wrong_width


def _read_csv(block: bytes, columns: list[str], wanted: list[str], layout: TextLayout,
              threads: bool, on_invalid: Callable[[pa_csv.InvalidRow], str]) -> pa.Table:
    return pa_csv.read_csv(
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
