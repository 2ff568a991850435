"""A seeded synthetic CTR generator with Criteo-, Avazu- and KDD-shaped schemas.

Categorical ids follow bounded power laws (Zipf-like, exponent 1.05-1.5) over the real
per-feature cardinalities (capped at `max_cardinality`), with missing values; dense features
are heavy-tailed counts. The click probability is `sigmoid(logit)` with

    logit = bias + sum_j w_j x_j                       (x = log(max(raw, 0) + 1), as prepare does)
          + sum_k e_k[id_k]                           (first-order id effects)
          + sum_(j,k) x_j * v_jk[id_k]                (dense x sparse interactions)
          + sum_(a,b) M_ab[id_a, id_b]                (sparse x sparse interactions)

where the interactions use the lowest-cardinality features (so they are learnable from little
data) and `bias` is calibrated to the shape's positive rate. A model with interactions
therefore beats a linear one, and the true probability gives the oracle log loss.

Rows are made in chunks of `CHUNK_ROWS`, chunk i from `default_rng([seed, i])`, so any pass
over the data regenerates the same rows in O(chunk) memory. Categorical values become the
same string tokens that the raw writers print (8-digit hex or decimal), hashed by
`tokens.token_keys`: preparing the generator's raw files gives the same dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nasrec_torchrec.data.encoding import dense_transform
from nasrec_torchrec.data.fields import RawChunk
from nasrec_torchrec.data.formats import AVAZU_COLUMNS, CRITEO_DENSE, CRITEO_SPARSE, KDD_DENSE, KDD_PROFILE, KDD_SPARSE
from nasrec_torchrec.data.split import splitmix64
from nasrec_torchrec.data.tokens import hex_token_keys, token_keys

CHUNK_ROWS = 65_536
DEFAULT_MAX_CARDINALITY = 2_000_000

# Distinct values per feature in the full Criteo Kaggle train set (45.8M rows, 33.76M ids).
CRITEO_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
    14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
# Avazu Kaggle train (40.4M rows), `hour` .. C21.
AVAZU_CARDINALITIES = (
    240, 7, 7, 4737, 7745, 26, 8552, 559, 36, 2686408, 6729486, 8251, 5, 4, 2626, 8, 9, 435,
    4, 68, 172, 60,
)
# KDD Cup 2012 track 2 training.txt (149.6M rows) ids, then profile gender and age.
KDD_CARDINALITIES = (26273, 641707, 14847, 26243606, 1188089, 4057084, 3298571, 22023547, 3, 6)


@dataclass(frozen=True)
class SyntheticShape:
    """The layout of one synthetic dataset family.

    Args:
        name: criteo, avazu or kdd (also the raw format `--raw` writes).
        dense: dense feature names; `sparse`: categorical names; `cardinalities`: per sparse.
        positive_rate: the calibrated click rate.
        dense_missing: maximum per-feature missing rate of dense values.
        sparse_missing: maximum per-feature missing rate of categorical values.
        decimal: sparse features printed as decimal numbers (the others as 8-digit hex).
    """

    name: str
    dense: tuple[str, ...]
    sparse: tuple[str, ...]
    cardinalities: tuple[int, ...]
    positive_rate: float
    dense_missing: float
    sparse_missing: float
    decimal: frozenset[str]


SHAPES: dict[str, SyntheticShape] = {
    "criteo": SyntheticShape("criteo", CRITEO_DENSE, CRITEO_SPARSE, CRITEO_CARDINALITIES,
                             0.256, 0.4, 0.1, frozenset()),
    "avazu": SyntheticShape("avazu", (), AVAZU_COLUMNS[2:], AVAZU_CARDINALITIES, 0.17, 0.0, 0.0,
                            frozenset(AVAZU_COLUMNS[2:5] + AVAZU_COLUMNS[14:])),
    "kdd": SyntheticShape("kdd", KDD_DENSE, KDD_SPARSE + KDD_PROFILE, KDD_CARDINALITIES,
                          0.05, 0.0, 0.0, frozenset(KDD_SPARSE + KDD_PROFILE)),
}

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_EFFECT_ROWS = 1024
_CROSS_ROWS = 8
_KEY_TABLE_ROWS = 1 << 16


@dataclass
class SyntheticRows:
    """One generated chunk: labels, raw dense values, id ranks (-1 = missing), probabilities."""

    labels: np.ndarray
    dense: np.ndarray
    ranks: np.ndarray
    probability: np.ndarray


class SyntheticGenerator:
    """Generates the rows of one synthetic dataset, chunk by chunk.

    Args:
        shape: the dataset family (`SHAPES[name]`).
        seed: the seed of the parameters and of every chunk.
        max_cardinality: cap on each feature's number of distinct ids.

    Example::

        generator = SyntheticGenerator(SHAPES["criteo"], seed=0)
        for chunk in generator.raw_chunks(rows=200_000):
            ...  # RawChunk: labels, dense (raw), keys, probability
    """

    def __init__(self, shape: SyntheticShape, seed: int = 0,
                 max_cardinality: int = DEFAULT_MAX_CARDINALITY) -> None:
        self.shape = shape
        self.seed = seed
        self.vocabulary = np.array([min(c, max_cardinality) for c in shape.cardinalities])
        rng = np.random.default_rng([seed, 1 << 20])
        dense_n, sparse_n = len(shape.dense), len(shape.sparse)
        self.exponent = rng.uniform(1.05, 1.5, sparse_n)
        self.sparse_missing = rng.uniform(0.0, shape.sparse_missing, sparse_n)
        self.dense_missing = rng.uniform(0.0, shape.dense_missing, dense_n)
        self.dense_scale = rng.normal(1.0, 0.6, dense_n)
        self.dense_weight = rng.normal(0.0, 0.5 / np.sqrt(max(dense_n, 1)), dense_n)
        self.effects = rng.normal(0.0, 0.7 / np.sqrt(sparse_n), (sparse_n, _EFFECT_ROWS + 1))
        self.effects[:, _EFFECT_ROWS] = 0.0  # the effect of a missing value
        by_cardinality = [int(k) for k in np.argsort(self.vocabulary, kind="stable")]
        self.sparse_pairs = [(by_cardinality[i], by_cardinality[i + 1])
                             for i in range(0, min(6, sparse_n - 1), 2)]
        self.sparse_cross = rng.normal(0.0, 0.6, (len(self.sparse_pairs), _CROSS_ROWS, _CROSS_ROWS))
        self.dense_pairs = [(j, by_cardinality[(j + 1) % sparse_n]) for j in range(min(3, dense_n))]
        self.dense_cross = rng.normal(0.0, 0.4, (len(self.dense_pairs), _CROSS_ROWS))
        self.salt = splitmix64(np.arange(sparse_n, dtype=np.uint64) + np.uint64(seed) * np.uint64(977))
        self.bias = 0.0
        self.bias = self._calibrated_bias(shape.positive_rate)
        self._key_tables = {k: self._keys(np.arange(self.vocabulary[k]), k)
                            for k in range(sparse_n) if self.vocabulary[k] <= _KEY_TABLE_ROWS}

    def _calibrated_bias(self, positive_rate: float) -> float:
        """The bias whose mean click probability on a calibration sample is `positive_rate`."""
        rng = np.random.default_rng([self.seed, 1 << 21])
        dense, ranks = self._features(rng, 20_000)
        logits = self._logits(dense, ranks)
        low, high = -20.0, 20.0
        for _ in range(60):
            middle = (low + high) / 2
            if np.mean(1 / (1 + np.exp(-(logits + middle)))) < positive_rate:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    def _features(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw dense values `[n, Dn]` (NaN = missing) and id ranks `[n, F]` (-1 = missing)."""
        shape = self.shape
        if shape.name == "kdd":
            impression = 1 + rng.poisson(np.exp(rng.normal(0.0, 1.0, n)))
            depth = rng.integers(1, 4, n)
            position = 1 + (rng.random(n) * depth).astype(np.int64)
            dense = np.stack([impression, depth, position], axis=1).astype(np.float64)
        else:
            lam = np.exp(rng.normal(self.dense_scale, 1.2, (n, len(shape.dense))))
            dense = rng.poisson(lam).astype(np.float64)
            if shape.name == "criteo" and dense.shape[1] > 1:
                dense[:, 1] -= 1
        dense[rng.random(dense.shape) < self.dense_missing] = np.nan
        u = rng.random((n, len(shape.sparse)), dtype=np.float32)
        power = (1.0 - self.exponent).astype(np.float32)
        top = ((self.vocabulary + 1.0) ** power).astype(np.float32)
        ranks = np.floor((1.0 - u * (1.0 - top)) ** (1.0 / power)).astype(np.int64) - 1
        ranks = np.clip(ranks, 0, self.vocabulary - 1)
        ranks[rng.random(ranks.shape) < self.sparse_missing] = -1
        if shape.name == "kdd":
            ranks = self.profile_ranks(ranks)
        return dense, ranks

    def profile_ranks(self, ranks: np.ndarray) -> np.ndarray:
        """Gender and age as functions of the user (10% of users have no profile)."""
        user = ranks[:, self.shape.sparse.index("UserID")]
        mixed = splitmix64(user.astype(np.uint64) ^ np.uint64(self.seed))
        has_profile = (mixed % np.uint64(10)) != 0
        gender = ((mixed >> np.uint64(8)) % np.uint64(3)).astype(np.int64)
        age = ((mixed >> np.uint64(16)) % np.uint64(6)).astype(np.int64)
        ranks[:, -2] = np.where(has_profile, gender, -1)
        ranks[:, -1] = np.where(has_profile, age, -1)
        return ranks

    def _logits(self, dense: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """The planted logit of each row (before calibration the bias is 0)."""
        x = dense_transform(dense).astype(np.float64)
        present = ranks >= 0
        logits = np.full(len(ranks), self.bias) + x @ self.dense_weight
        bucket = np.where(present, ranks % _EFFECT_ROWS, _EFFECT_ROWS)
        logits += self.effects[np.arange(ranks.shape[1]), bucket].sum(axis=1)
        cross = np.where(present, ranks % _CROSS_ROWS, 0)
        for index, (a, b) in enumerate(self.sparse_pairs):
            both = present[:, a] & present[:, b]
            logits += np.where(both, self.sparse_cross[index, cross[:, a], cross[:, b]], 0.0)
        for index, (j, k) in enumerate(self.dense_pairs):
            logits += np.where(present[:, k], x[:, j] * self.dense_cross[index, cross[:, k]], 0.0)
        return logits

    def rows(self, index: int, n: int) -> SyntheticRows:
        """Chunk `index` with `n` rows."""
        rng = np.random.default_rng([self.seed, index])
        dense, ranks = self._features(rng, n)
        probability = 1.0 / (1.0 + np.exp(-self._logits(dense, ranks)))
        labels = (rng.random(n) < probability).astype(np.int8)
        return SyntheticRows(labels, dense, ranks, probability)

    def chunks(self, rows: int) -> Iterator[SyntheticRows]:
        """All chunks of a dataset of `rows` rows."""
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            yield self.rows(index, min(CHUNK_ROWS, rows - start))

    def _scrambled(self, ranks: np.ndarray, k: int) -> np.ndarray:
        """The rank scrambled into 32 bits (gender and age keep their rank).

        The scramble merges two ranks now and then (about V^2 / 2^33 pairs), as hashing does
        in real logs.
        """
        if self.shape.sparse[k] in KDD_PROFILE:
            return ranks.astype(np.uint64)
        return splitmix64(ranks.astype(np.uint64) ^ self.salt[k]) >> np.uint64(32)

    def tokens(self, ranks: np.ndarray, k: int) -> pa.Array:
        """The printed tokens of feature k: the scrambled rank in hex or decimal, null = missing."""
        token = self._scrambled(ranks, k)
        missing = pa.array(ranks < 0)
        if self.shape.sparse[k] in self.shape.decimal:
            strings = pc.cast(pa.array(token), pa.string())
        else:
            shifts = np.arange(28, -4, -4, dtype=np.uint64)
            digits = _HEX_DIGITS[((token[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.int64)]
            offsets = np.arange(0, 8 * len(token) + 1, 8, dtype=np.int32)
            strings = pa.StringArray.from_buffers(len(token), pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(digits)))
        return pc.if_else(missing, pa.scalar(None, pa.string()), strings)

    def keys(self, ranks: np.ndarray, k: int) -> np.ndarray:
        """`token_keys` of `tokens(ranks, k)`; looked up in a table for small vocabularies."""
        table = self._key_tables.get(k)
        if table is not None:
            return np.where(ranks >= 0, table[np.maximum(ranks, 0)], np.uint64(0))
        return self._keys(ranks, k)

    def _keys(self, ranks: np.ndarray, k: int) -> np.ndarray:
        """`token_keys` of `tokens(ranks, k)`, computed without strings for hex tokens."""
        if self.shape.sparse[k] in self.shape.decimal:
            return token_keys(self.tokens(ranks, k))[0]
        return hex_token_keys(self._scrambled(ranks, k), ranks < 0)

    def raw_chunks(self, rows: int) -> Iterator[RawChunk]:
        """The dataset as `RawChunk`s (token keys, raw dense, true probabilities)."""
        first = 1
        for chunk in self.chunks(rows):
            n = len(chunk.labels)
            keys = np.stack([self.keys(chunk.ranks[:, k], k)
                             for k in range(chunk.ranks.shape[1])], axis=1)
            yield RawChunk(f"synthetic-{self.shape.name}", np.arange(first, first + n), chunk.labels,
                           chunk.dense, keys, probability=chunk.probability)
            first += n
