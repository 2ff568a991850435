"""The raw formats `prepare` reads: Criteo, Avazu, KDD Cup 2012 track 2, BARS CSV, Parquet.

`open_reader(format_name, options, first_input)` returns a `Reader`: the label, dense and
sparse feature names of the format, and `chunks(path)` streaming a file as `RawChunk`s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from nasrec_torchrec.data.choices import FORMATS
from nasrec_torchrec.data.fields import RawChunk
from nasrec_torchrec.data.parquet_reader import parquet_columns, read_parquet
from nasrec_torchrec.data.text_reader import (DEFAULT_BLOCK_BYTES, TextLayout,
                                              check_unique_columns, open_input, read_header,
                                              read_text)
from nasrec_torchrec.data.tokens import HEX_BYTES, MISSING_KEY, token_keys
from nasrec_torchrec.errors import NASRecError, located


CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_SPARSE = tuple(f"C{i}" for i in range(1, 27))
AVAZU_COLUMNS = (
    "id", "click", "hour", "C1", "banner_pos", "site_id", "site_domain", "site_category",
    "app_id", "app_domain", "app_category", "device_id", "device_ip", "device_model",
    "device_type", "device_conn_type", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
)
KDD_COLUMNS = ("Click", "Impression", "DisplayURL", "AdID", "AdvertiserID", "Depth", "Position",
               "QueryID", "KeywordID", "TitleID", "DescriptionID", "UserID")
KDD_DENSE = ("Impression", "Depth", "Position")
KDD_SPARSE = ("DisplayURL", "AdID", "AdvertiserID", "QueryID", "KeywordID", "TitleID",
              "DescriptionID", "UserID")
KDD_PROFILE = ("Gender", "Age")

CRITEO_LAYOUT = TextLayout(
    delimiter="\t", quoted=False, columns=("label", *CRITEO_DENSE, *CRITEO_SPARSE),
    header="never", label="label", dense=CRITEO_DENSE, sparse=CRITEO_SPARSE,
    allowed_bytes=HEX_BYTES, token_what="hex id",
)
AVAZU_LAYOUT = TextLayout(
    delimiter=",", quoted=True, columns=AVAZU_COLUMNS, header="auto", label="click",
    dense=(), sparse=AVAZU_COLUMNS[2:],
)
KDD_LAYOUT = TextLayout(
    delimiter="\t", quoted=False, columns=KDD_COLUMNS, header="never", label="Click",
    dense=KDD_DENSE, sparse=KDD_SPARSE, label_rule="count",
)


@dataclass(frozen=True)
class ReaderOptions:
    """Options of the readers (the `prepare` flags that shape reading).

    Args:
        on_bad_row: "error" or "skip".
        label_column: csv/parquet label column.
        dense_columns: csv/parquet dense columns (default none).
        sparse_columns: csv/parquet categorical columns (default all other columns).
        kdd_user_profile: optional KDD `userid_profile.txt` (UserID, Gender, Age).
        block_bytes: bytes per text block.
        label_optional: inputs may lack the label (`nasrec predict`): a csv/parquet file
            without the label column, or a criteo/avazu file whose first line has one field
            fewer than the format's; their chunks' labels are None. KDD keeps its label.
    """

    on_bad_row: str = "error"
    label_column: str = "label"
    dense_columns: tuple[str, ...] = ()
    sparse_columns: tuple[str, ...] | None = None
    kdd_user_profile: str | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES
    label_optional: bool = False


@dataclass
class Reader:
    """A format opened for reading: feature names and a chunk stream per file."""

    format_name: str
    label: str | None
    dense: list[str]
    sparse: list[str]
    chunks: Callable[[str], Iterator[RawChunk]] = field(repr=False)


@dataclass
class KddProfile:
    """`userid_profile.txt` held as sorted user keys with the keys of gender and age."""

    path: str
    user_keys: np.ndarray
    profile_keys: np.ndarray

    @classmethod
    def load(cls, path: str) -> "KddProfile":
        """Read the whole profile (O(users) memory); every line needs 3 tab-separated fields."""
        def on_invalid(row: pa_csv.InvalidRow) -> str:
            raise located(f"wrong field count: expected 3 fields, got {row.actual_columns}",
                          path, row.number)

        if not os.path.isfile(path):
            raise NASRecError(f"{path}: KDD user profile not found")
        try:
            with open_input(path) as handle:
                table = _read_profile(handle, on_invalid)
        except pa.ArrowInvalid as error:
            raise located(f"cannot read the KDD user profile: {error}", path) from None
        users, _ = token_keys(table["UserID"])
        order = np.argsort(users, kind="stable")
        profile = np.stack([token_keys(table[name])[0] for name in KDD_PROFILE], axis=1)
        return cls(path, users[order], profile[order])

    def append(self, keys: np.ndarray, columns: dict[str, pa.Array]) -> np.ndarray:
        """Append the gender and age keys of each row's user (0 when the user is unknown)."""
        users = keys[:, KDD_SPARSE.index("UserID")]
        profile = np.zeros((len(users), len(KDD_PROFILE)), dtype=np.uint64)
        if self.user_keys.size:
            position = np.minimum(np.searchsorted(self.user_keys, users), self.user_keys.size - 1)
            found = (self.user_keys[position] == users) & (users != MISSING_KEY)
            profile[found] = self.profile_keys[position[found]]
        return np.concatenate([keys, profile], axis=1)


def _read_profile(handle: Any, on_invalid: Callable[[pa_csv.InvalidRow], str]) -> pa.Table:
    """The profile's three columns as strings."""
    return pa_csv.read_csv(
        handle, read_options=pa_csv.ReadOptions(column_names=["UserID", *KDD_PROFILE],
                                                use_threads=False),
        parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False,
                                          invalid_row_handler=on_invalid),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in ("UserID", *KDD_PROFILE)}),
    )


def _no_profile(keys: np.ndarray, columns: dict[str, pa.Array]) -> np.ndarray:
    return np.concatenate([keys, np.zeros((len(keys), len(KDD_PROFILE)), np.uint64)], axis=1)


def _text_reader(format_name: str, layout: TextLayout, options: ReaderOptions,
                 extra_sparse: Callable[[np.ndarray, dict[str, pa.Array]], np.ndarray] | None = None,
                 extra_names: tuple[str, ...] = ()) -> Reader:
    def chunks(path: str) -> Iterator[RawChunk]:
        return read_text(path, layout, options.on_bad_row, options.block_bytes, extra_sparse)

    return Reader(format_name, layout.label, list(layout.dense),
                  [*layout.sparse, *extra_names], chunks)


def _unlabelled(layout: TextLayout) -> TextLayout:
    """`layout` without its label column."""
    columns = tuple(name for name in layout.columns or () if name != layout.label)
    return replace(layout, columns=columns, label=None)


def _fixed_layout(layout: TextLayout, options: ReaderOptions, first_input: str) -> TextLayout:
    """`layout`, or without its label when that is optional and `first_input`'s first line
    has one field fewer than the format's columns."""
    if not options.label_optional or layout.columns is None:
        return layout
    fields = len(read_header(first_input, layout.delimiter))
    return _unlabelled(layout) if fields == len(layout.columns) - 1 else layout


def _label_of(columns: list[str], options: ReaderOptions) -> str | None:
    """The csv/parquet label column, None when optional and absent."""
    if options.label_optional and options.label_column not in columns:
        return None
    return options.label_column


def _mapped_columns(path: str, columns: list[str], options: ReaderOptions,
                    line: int | None) -> tuple[list[str], list[str]]:
    """Dense and sparse columns of a csv/parquet input: as given, or all non-label columns."""
    if not columns:
        raise located("empty file: no data rows", path, line)
    check_unique_columns(columns, path, line)
    label = _label_of(columns, options)
    for name in (*([label] if label else []), *options.dense_columns,
                 *(options.sparse_columns or ())):
        if name not in columns:
            raise located(f"unknown column (the file has {', '.join(columns)})", path, line, name)
    dense = list(options.dense_columns)
    if options.sparse_columns is not None:
        sparse = list(options.sparse_columns)
    else:
        sparse = [name for name in columns if name != options.label_column and name not in dense]
    return dense, sparse


def open_reader(format_name: str, options: ReaderOptions, first_input: str) -> Reader:
    """The reader of `format_name`; csv/parquet feature names come from `first_input`."""
    if format_name == "criteo":
        return _text_reader("criteo", _fixed_layout(CRITEO_LAYOUT, options, first_input), options)
    if format_name == "avazu":
        return _text_reader("avazu", _fixed_layout(AVAZU_LAYOUT, options, first_input), options)
    if format_name == "kdd":
        profile = KddProfile.load(options.kdd_user_profile) if options.kdd_user_profile else None
        return _text_reader("kdd", KDD_LAYOUT, options,
                            profile.append if profile else _no_profile, KDD_PROFILE)
    if format_name == "csv":
        header = read_header(first_input, ",")
        dense, sparse = _mapped_columns(first_input, header, options, 1)
        layout = TextLayout(delimiter=",", quoted=True, columns=None, header="always",
                            label=_label_of(header, options), dense=tuple(dense),
                            sparse=tuple(sparse))
        return _text_reader("csv", layout, options)
    if format_name == "parquet":
        columns = parquet_columns(first_input)
        dense, sparse = _mapped_columns(first_input, columns, options, None)
        label = _label_of(columns, options)

        def chunks(path: str) -> Iterator[RawChunk]:
            return read_parquet(path, label, dense, sparse, options.on_bad_row)

        return Reader("parquet", label, dense, sparse, chunks)
    raise NASRecError(f"unknown format '{format_name}' (known: {', '.join(FORMATS)})")
