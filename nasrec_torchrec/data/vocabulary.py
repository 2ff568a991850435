"""Per-feature vocabularies: token key -> full-vocabulary row, the one id -> row mapping.

Built on the train split only: rows 1.. go to keys by descending count, ties broken by
ascending key (deterministic); keys seen fewer than `min_frequency` times, unseen keys and
missing values get row 0. An embedding table of any size (capped or full) then takes
`schema.table_row(rows, table_rows)`, so capped and full tables share this mapping.
Counting is O(distinct keys) in memory, never O(rows).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nasrec_torchrec.data.tokens import MISSING_KEY
from nasrec_torchrec.errors import NASRecError

VOCABULARY_DIR = "vocab"


class KeyCounter:
    """Counts of the non-missing keys of one feature, merged chunk by chunk."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.counts = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_size = 0

    def add(self, keys: np.ndarray) -> None:
        """Count `keys` (0 = missing is not counted)."""
        unique, counts = np.unique(keys[keys != MISSING_KEY], return_counts=True)
        self._pending.append((unique, counts))
        self._pending_size += unique.size
        if self._pending_size > max(1 << 20, 2 * self.keys.size):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self.keys, *(keys for keys, _ in self._pending)])
        counts = np.concatenate([self.counts, *(counts for _, counts in self._pending)])
        self.keys, inverse = np.unique(keys, return_inverse=True)
        self.counts = np.bincount(inverse, weights=counts, minlength=self.keys.size).astype(np.int64)
        self._pending, self._pending_size = [], 0

    def vocabulary(self, min_frequency: int = 1) -> "Vocabulary":
        """Keys counted at least `min_frequency` times, ordered by descending count then key."""
        self._merge()
        keep = self.counts >= min_frequency
        keys, counts = self.keys[keep], self.counts[keep]
        order = np.lexsort((keys, -counts))
        return Vocabulary(keys[order], counts[order])


class Vocabulary:
    """Keys in row order (`keys[r - 1]` has row r) and their train counts.

    Args:
        keys: `[V]` uint64 token keys, row order.
        counts: `[V]` int64 train counts.
    """

    def __init__(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.uint64)
        self.counts = np.asarray(counts, dtype=np.int64)
        self._order = np.argsort(self.keys, kind="stable")
        self._sorted_keys = self.keys[self._order]

    @property
    def num_rows(self) -> int:
        """Rows of the full table: the vocabulary plus row 0."""
        return int(self.keys.size) + 1

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Full-vocabulary rows `[n]` int64 of `keys`; 0 for missing or out-of-vocabulary."""
        keys = np.asarray(keys, dtype=np.uint64)
        if not self._sorted_keys.size:
            return np.zeros(keys.shape, dtype=np.int64)
        position = np.minimum(np.searchsorted(self._sorted_keys, keys), self._sorted_keys.size - 1)
        found = self._sorted_keys[position] == keys
        return np.where(found & (keys != MISSING_KEY), self._order[position] + 1, 0).astype(np.int64)

    def save(self, path: str) -> None:
        """Write `(row, key, count)` as Parquet."""
        table = pa.table({
            "row": pa.array(np.arange(1, self.num_rows, dtype=np.int64)),
            "key": pa.array(self.keys), "count": pa.array(self.counts),
        })
        pq.write_table(table, path)

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        """Read a vocabulary written by `save`."""
        try:
            table = pq.read_table(path, columns=["key", "count"])
        except (OSError, pa.ArrowInvalid) as error:
            raise NASRecError(f"{path}: cannot read the vocabulary: {error}") from None
        return cls(table["key"].to_numpy(), table["count"].to_numpy())


def vocabulary_file(name: str, index: int) -> str:
    """File name (inside `vocab/`) of the vocabulary of sparse feature `index` named `name`."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{index:03d}-{safe}.parquet"


def save_vocabularies(directory: str, names: list[str], vocabularies: list[Vocabulary]) -> None:
    """Write every feature's vocabulary under `directory/vocab/`."""
    os.makedirs(os.path.join(directory, VOCABULARY_DIR), exist_ok=True)
    for index, (name, vocabulary) in enumerate(zip(names, vocabularies)):
        vocabulary.save(os.path.join(directory, VOCABULARY_DIR, vocabulary_file(name, index)))


def load_vocabularies(directory: str, names: list[str]) -> list[Vocabulary]:
    """The vocabularies saved by `save_vocabularies`, in `names` order."""
    return [Vocabulary.load(os.path.join(directory, VOCABULARY_DIR, vocabulary_file(name, index)))
            for index, name in enumerate(names)]
