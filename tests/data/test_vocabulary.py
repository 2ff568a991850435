"""The id -> row mapping: vocabulary order, min frequency, OOV, capped and full tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasrec_torchrec.data.encoding import dense_transform
from nasrec_torchrec.data.schema import Schema, SparseFeature, table_row
from nasrec_torchrec.data.vocabulary import KeyCounter, Vocabulary


def counted(*chunks: list[int]) -> KeyCounter:
    counter = KeyCounter()
    for chunk in chunks:
        counter.add(np.array(chunk, dtype=np.uint64))
    return counter


def test_rows_follow_descending_frequency_with_ties_by_key() -> None:
    vocabulary = counted([5, 9, 9, 0], [7, 9, 5, 3, 0, 0]).vocabulary()
    assert vocabulary.keys.tolist() == [9, 5, 3, 7]
    assert vocabulary.rows(np.array([9, 5, 3, 7, 0, 42], dtype=np.uint64)).tolist() == [1, 2, 3, 4, 0, 0]
    assert vocabulary.num_rows == 5


def test_min_frequency_sends_rare_keys_to_row_zero() -> None:
    vocabulary = counted([5, 9, 9, 5, 3]).vocabulary(min_frequency=2)
    assert vocabulary.rows(np.array([9, 5, 3], dtype=np.uint64)).tolist() == [2, 1, 0]


def test_counter_merges_many_chunks_exactly() -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(1, 5000, 200_000).astype(np.uint64)
    counter = KeyCounter()
    for part in np.array_split(data, 40):
        counter.add(part)
    vocabulary = counter.vocabulary()
    keys, counts = np.unique(data, return_counts=True)
    assert dict(zip(vocabulary.keys.tolist(), vocabulary.counts.tolist())) == dict(
        zip(keys.tolist(), counts.tolist()))
    assert (np.diff(vocabulary.counts) <= 0).all()


def test_vocabulary_round_trips(tmp_path: Path) -> None:
    vocabulary = counted([4, 4, 8]).vocabulary()
    vocabulary.save(str(tmp_path / "v.parquet"))
    loaded = Vocabulary.load(str(tmp_path / "v.parquet"))
    np.testing.assert_array_equal(loaded.keys, vocabulary.keys)
    np.testing.assert_array_equal(loaded.counts, vocabulary.counts)


def test_capped_and_full_tables_share_the_mapping() -> None:
    schema = Schema("label", (), (SparseFeature("c", 1000),), "test")
    rows = np.arange(1000)
    full = table_row(rows, schema.table_rows("c", None))
    capped = table_row(rows, schema.table_rows("c", 100))
    np.testing.assert_array_equal(full, rows)
    np.testing.assert_array_equal(capped[:100], rows[:100])
    assert capped[0] == 0 and capped.min() == 0 and capped.max() == 99
    assert (capped[100:] >= 1).all() and capped[100] == 1 + 99 % 99


def test_dense_transform_matches_hand_computed_values() -> None:
    raw = np.array([0.0, 1.0, np.e - 1, -5.0, np.nan, 1000.0])
    expected = np.array([0.0, np.log(2.0), 1.0, 0.0, 0.0, np.log(1001.0)], dtype=np.float32)
    np.testing.assert_allclose(dense_transform(raw), expected, rtol=1e-6)
    assert dense_transform(raw).dtype == np.float32
