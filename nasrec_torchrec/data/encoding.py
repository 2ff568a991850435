"""Raw values -> model inputs: the dense transform and categorical keys -> full-vocabulary rows."""

from __future__ import annotations

import numpy as np

from nasrec_torchrec.data.fields import RawChunk
from nasrec_torchrec.data.vocabulary import Vocabulary

DENSE_TRANSFORM = "log(max(x, 0) + 1); missing -> 0"


def dense_transform(values: np.ndarray) -> np.ndarray:
    """`log(max(x, 0) + 1)` elementwise, NaN (missing) -> 0, as float32."""
    values = np.asarray(values, dtype=np.float64)
    return np.log1p(np.maximum(np.nan_to_num(values, nan=0.0), 0.0)).astype(np.float32)


class Encoder:
    """Encodes raw chunks with fixed vocabularies (one per sparse feature, schema order)."""

    def __init__(self, vocabularies: list[Vocabulary]) -> None:
        self.vocabularies = vocabularies

    def encode(self, chunk: RawChunk) -> tuple[np.ndarray, np.ndarray]:
        """`(dense [n, Dn] float32, rows [n, F] int64)` of a chunk."""
        rows = np.empty(chunk.keys.shape, dtype=np.int64)
        for index, vocabulary in enumerate(self.vocabularies):
            rows[:, index] = vocabulary.rows(chunk.keys[:, index])
        return dense_transform(chunk.dense), rows
