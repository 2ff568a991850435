"""Parsed rows of a raw file (`RawChunk`) and the vectorized, located checks of their fields.

Readers parse a block of rows into Arrow columns; the functions here turn those columns into
numpy arrays and collect, per row, the first fault found (`BadRows`). With `on_bad_row="error"`
the first faulty row raises a `NASRecError` naming file, line and field; with `"skip"` the
faulty rows are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nasrec_torchrec.data.tokens import token_keys
from nasrec_torchrec.errors import located


@dataclass
class RawChunk:
    """Rows of one input file, parsed but not yet encoded.

    Args:
        path: the file the rows come from.
        lines: `[n]` line (text) or row (Parquet) number of each row, 1-based.
        labels: `[n]` int8 0/1, or None when the input has no label column (`nasrec predict`).
        dense: `[n, Dn]` float64 raw values, NaN = missing.
        keys: `[n, F]` uint64 token keys (`tokens.token_keys`), 0 = missing.
        skipped: rows of this block dropped by `on_bad_row="skip"`.
        probability: `[n]` true click probability when known (synthetic data), else None.
    """

    path: str
    lines: np.ndarray
    labels: np.ndarray | None
    dense: np.ndarray
    keys: np.ndarray
    skipped: int = 0
    probability: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class BadRows:
    """The first fault of each faulty row of a block, in row order of the block."""

    path: str
    lines: np.ndarray
    on_bad_row: str
    faults: dict[int, tuple[str, str]] = field(default_factory=dict)

    def add(self, mask: np.ndarray, field_name: str, message: str) -> None:
        """Record `message` about `field_name` for every row in `mask` without a fault yet."""
        for index in np.flatnonzero(mask):
            self.faults.setdefault(int(index), (field_name, message))
            if self.on_bad_row == "error":
                break

    def raise_first(self) -> None:
        """In "error" mode, raise the fault of the earliest faulty row, if any."""
        if self.on_bad_row == "error" and self.faults:
            index = min(self.faults)
            field_name, message = self.faults[index]
            raise located(message, self.path, int(self.lines[index]), field_name)

    def keep_mask(self, n: int) -> np.ndarray:
        """Rows without a fault."""
        keep = np.ones(n, dtype=bool)
        keep[list(self.faults)] = False
        return keep


def _float_column(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """`(values float64 with NaN for null/empty, bad mask)` of a column of numbers or strings.

    The one rule for special values: NaN (a float NaN, or the text "nan") is a missing value,
    like an empty field or a null; an infinite value is bad.
    """
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.if_else(pc.equal(pc.utf8_trim_whitespace(column), ""), None, column)
        try:
            values = pc.cast(column, pa.float64())
            bad = np.zeros(len(column), dtype=bool)
        except pa.ArrowInvalid:
            parsed = [_to_float(text) for text in column.to_pylist()]
            bad = np.array([value is False for value in parsed], dtype=bool)
            values = pa.array([None if value is False else value for value in parsed],
                              type=pa.float64())
    else:
        values = pc.cast(column, pa.float64())
        bad = np.zeros(len(column), dtype=bool)
    numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
    bad |= np.isinf(numbers)
    return numbers, bad


def _to_float(text: str | None) -> float | None | bool:
    """`float(text)`, None for a missing value, False when not a number."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return False


def parse_labels(column: pa.Array | pa.ChunkedArray, name: str, bad: BadRows,
                 rule: str = "binary") -> np.ndarray:
    """0/1 int8 labels; rule "binary" demands 0 or 1, rule "count" maps a count > 0 to 1."""
    values, not_number = _float_column(column)
    bad.add(not_number, name, f"label is not a number (got {_sample(column, not_number)})")
    missing = np.isnan(values) & ~not_number
    bad.add(missing, name, "label is missing")
    if rule == "binary":
        wrong = ~np.isnan(values) & (values != 0) & (values != 1)
        bad.add(wrong, name, f"label must be 0 or 1 (got {_sample(column, wrong)})")
        return np.nan_to_num(values).astype(np.int8)
    wrong = ~np.isnan(values) & ((values < 0) | (values != np.floor(values)))
    bad.add(wrong, name, f"count must be a non-negative integer (got {_sample(column, wrong)})")
    return (np.nan_to_num(values) > 0).astype(np.int8)


def parse_dense(columns: list[pa.Array | pa.ChunkedArray], names: list[str],
                bad: BadRows, n: int) -> np.ndarray:
    """`[n, Dn]` float64 raw dense values (NaN = missing); non-numbers are faults."""
    dense = np.zeros((n, len(names)), dtype=np.float64)
    for index, (column, name) in enumerate(zip(columns, names)):
        values, wrong = _float_column(column)
        bad.add(wrong, name, f"dense value is not a number (got {_sample(column, wrong)}; an "
                "empty field or NaN is a missing value, an infinite one is refused)")
        dense[:, index] = values
    return dense


def parse_sparse(columns: list[pa.Array | pa.ChunkedArray], names: list[str], bad: BadRows,
                 n: int, allowed_bytes: np.ndarray | None = None,
                 what: str = "token") -> np.ndarray:
    """`[n, F]` uint64 token keys; with `allowed_bytes`, other bytes are faults."""
    keys = np.zeros((n, len(names)), dtype=np.uint64)
    for index, (column, name) in enumerate(zip(columns, names)):
        keys[:, index], wrong = token_keys(column, allowed_bytes)
        bad.add(wrong, name, f"bad {what} (got {_sample(column, wrong)})")
    return keys


def _sample(column: pa.Array | pa.ChunkedArray, mask: np.ndarray) -> str:
    """The first offending value, quoted, for an error message."""
    indices = np.flatnonzero(mask)
    return repr(column[int(indices[0])].as_py()) if indices.size else "''"
