"""`schema.json`: what a prepared dataset holds, and the id -> embedding-row rule."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nasrec_torchrec.artifacts import SCHEMA_FILE, write_json
from nasrec_torchrec.errors import NASRecError

DEFAULT_EMBEDDING_CAP = 500_000


@dataclass(frozen=True)
class SparseFeature:
    """A categorical feature; `num_rows` counts row 0 (missing / out of vocabulary)."""

    name: str
    num_rows: int


@dataclass(frozen=True)
class Schema:
    """The layout of a prepared dataset.

    Args:
        label: name of the 0/1 label column.
        dense: names of the dense features (float32 columns, already transformed).
        sparse: categorical features; their Parquet columns hold int64 rows of the full
            vocabulary (0 = missing / out of vocabulary, 1.. by descending frequency).
        source_format: the raw format prepared (criteo, avazu, kdd, csv, parquet, synthetic).
        splits: split name -> row count.
        positive_rate: split name -> fraction of label 1.
        extra: free-form provenance (transforms, thresholds, input files).
    """

    label: str
    dense: tuple[str, ...]
    sparse: tuple[SparseFeature, ...]
    source_format: str
    splits: dict[str, int] = field(default_factory=dict)
    positive_rate: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sparse_names(self) -> list[str]:
        """Sparse feature names in schema order (the order of the embedding tables)."""
        return [feature.name for feature in self.sparse]

    def table_rows(self, name: str, embedding_cap: int | None) -> int:
        """Rows of the embedding table of feature `name`: full size, or at most `embedding_cap`."""
        full = next((f.num_rows for f in self.sparse if f.name == name), None)
        if full is None:
            raise NASRecError(f"schema: unknown sparse feature '{name}'")
        return full if embedding_cap is None else max(2, min(full, embedding_cap))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, capped cardinalities at the default cap included for readers."""
        data = asdict(self)
        data["dense"] = list(self.dense)
        data["sparse"] = [
            {"name": f.name, "num_rows": f.num_rows,
             "num_rows_capped": self.table_rows(f.name, DEFAULT_EMBEDDING_CAP)}
            for f in self.sparse
        ]
        data["default_embedding_cap"] = DEFAULT_EMBEDDING_CAP
        return data

    def save(self, directory: str) -> None:
        """Write `schema.json` into `directory`."""
        write_json(os.path.join(directory, SCHEMA_FILE), self.to_dict())

    @classmethod
    def load(cls, directory: str) -> "Schema":
        """Read `schema.json` from a prepared dataset directory."""
        path = os.path.join(directory, SCHEMA_FILE)
        try:
            with open(path) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise NASRecError(f"{path}: not found: is '{directory}' a prepared dataset "
                              "(nasrec prepare / nasrec synth)?") from None
        except json.JSONDecodeError as error:
            raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
        try:
            return cls(
                label=data["label"], dense=tuple(data["dense"]),
                sparse=tuple(SparseFeature(f["name"], int(f["num_rows"])) for f in data["sparse"]),
                source_format=data["source_format"], splits=dict(data.get("splits", {})),
                positive_rate=dict(data.get("positive_rate", {})), extra=dict(data.get("extra", {})),
            )
        except KeyError as error:
            raise NASRecError(f"{path}: missing field {error}") from None


def table_row(rows: np.ndarray, table_rows: int) -> np.ndarray:
    """Map full-vocabulary rows to rows of a table of `table_rows` rows (capped or full).

    Rows below `table_rows` are kept (so a capped and a full table agree on the frequent ids,
    which have the small rows); rarer rows are hashed over rows 1..table_rows-1; row 0 stays
    the missing / out-of-vocabulary row. With full tables this is the identity.
    """
    rows = np.asarray(rows, dtype=np.int64)
    return np.where(rows < table_rows, rows, 1 + (rows - 1) % (table_rows - 1))
