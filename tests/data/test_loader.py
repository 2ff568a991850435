"""ParquetBatchLoader: batch contents, rank partition, shuffling, resuming."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torchrec.datasets.utils import Batch

from nasrec_torchrec.data.loader import ParquetBatchLoader
from nasrec_torchrec.data.schema import Schema, table_row


def stacked(batches: list[Batch], schema: Schema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels [N], dense [N, Dn], sparse [N, F]) of a list of batches."""
    labels = torch.cat([b.labels for b in batches]).numpy()
    dense = torch.cat([b.dense_features for b in batches]).numpy()
    sparse = np.concatenate([
        np.stack([b.sparse_features.to_dict()[name].values().numpy()
                  for name in schema.sparse_names], axis=1) for b in batches])
    return labels, dense, sparse


def source_rows(data_dir: str, split: str, schema: Schema, cap: int | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = pq.read_table(f"{data_dir}/{split}")
    dense = np.stack([table[name].to_numpy() for name in schema.dense], axis=1)
    sparse = np.stack([table_row(table[name].to_numpy(), schema.table_rows(name, cap))
                       for name in schema.sparse_names], axis=1)
    return table["label"].to_numpy(), dense, sparse


def row_ids(batches: list[Batch], schema: Schema, data_dir: str, split: str) -> list[int]:
    """Source row index of every yielded row (rows are told apart by all their values)."""
    def keys(labels: np.ndarray, dense: np.ndarray, sparse: np.ndarray) -> list[tuple]:
        return [(float(y), *map(float, d), *map(int, s)) for y, d, s in zip(labels, dense, sparse)]

    index = {key: i for i, key in enumerate(keys(*source_rows(data_dir, split, schema, None)))}
    assert len(index) == schema.splits[split]
    return [index[key] for key in keys(*stacked(batches, schema))]


@pytest.mark.parametrize("cap", [None, 50])
def test_batches_equal_the_source_rows(synthetic_criteo: str, cap: int | None) -> None:
    schema = Schema.load(synthetic_criteo)
    loader = ParquetBatchLoader(synthetic_criteo, "train", 512, embedding_cap=cap)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-schema.splits["train"] // 512)
    first = batches[0]
    assert first.dense_features.shape == (512, 13) and first.dense_features.dtype == torch.float32
    assert first.labels.shape == (512,) and first.labels.dtype == torch.float32
    kjt = first.sparse_features
    assert kjt.keys() == schema.sparse_names and kjt.stride() == 512
    assert (kjt.lengths() == 1).all()
    for got, want in zip(stacked(batches, schema), source_rows(synthetic_criteo, "train",
                                                                 schema, cap)):
        np.testing.assert_array_equal(got, want)
    if cap is not None:
        assert int(kjt.values().max()) < cap


def test_ranks_cover_every_row_exactly_once(synthetic_criteo: str) -> None:
    schema = Schema.load(synthetic_criteo)
    rows = schema.splits["val"]
    per_rank = [list(ParquetBatchLoader(synthetic_criteo, "val", 64, rank=r, world_size=3,
                                        shuffle=True, shuffle_buffer=300, seed=4))
                for r in range(3)]
    assert len({len(batches) for batches in per_rank}) == 1
    ids = [i for batches in per_rank for i in row_ids(batches, schema, synthetic_criteo, "val")]
    assert sorted(ids) == list(range(rows))
    last_sizes = [len(batches[-1].labels) for batches in per_rank]
    assert sum(last_sizes) == rows % (3 * 64) and max(last_sizes) - min(last_sizes) <= 1


def test_two_ranks_together_equal_one_rank_with_twice_the_batch(synthetic_criteo: str) -> None:
    options = dict(shuffle=True, shuffle_buffer=2000, seed=7, drop_last=True)
    single = list(ParquetBatchLoader(synthetic_criteo, "train", 256, **options))
    pair = [list(ParquetBatchLoader(synthetic_criteo, "train", 128, rank=r, world_size=2,
                                    **options)) for r in range(2)]
    assert len(single) == len(pair[0]) == len(pair[1])
    for whole, first, second in zip(single, *pair):
        assert torch.equal(whole.labels, torch.cat([first.labels, second.labels]))
        assert torch.equal(whole.dense_features,
                           torch.cat([first.dense_features, second.dense_features]))
        for name in whole.sparse_features.keys():
            assert torch.equal(whole.sparse_features[name].values(),
                               torch.cat([first.sparse_features[name].values(),
                                          second.sparse_features[name].values()]))


def test_max_rows_ends_the_split_there_over_the_ranks(synthetic_criteo: str) -> None:
    schema = Schema.load(synthetic_criteo)
    whole = stacked(list(ParquetBatchLoader(synthetic_criteo, "train", 512)), schema)
    for limit in (1500, 1000, 7):  # inside a row group, at its end, in the first batch
        per_rank = [ParquetBatchLoader(synthetic_criteo, "train", 64, rank=r, world_size=3,
                                       max_rows=limit) for r in range(3)]
        batches = [list(loader) for loader in per_rank]
        assert {len(b) for b in batches} == {len(per_rank[0])} == {-(-limit // 192)}
        ids = sorted(i for b in batches for i in row_ids(b, schema, synthetic_criteo, "train"))
        assert ids == list(range(limit))  # the first `limit` rows, each once
    limited = stacked(list(ParquetBatchLoader(synthetic_criteo, "train", 512, max_rows=1500)),
                      schema)
    for got, want in zip(limited, whole):
        np.testing.assert_array_equal(got, want[:1500])
    assert ParquetBatchLoader(synthetic_criteo, "val", 64, max_rows=10**9).num_rows == \
        schema.splits["val"]


def test_start_at_resumes_exactly(synthetic_criteo: str) -> None:
    loader = ParquetBatchLoader(synthetic_criteo, "train", 100, shuffle=True,
                                shuffle_buffer=1500, seed=1, rank=1, world_size=2)
    loader.set_epoch(3)
    uninterrupted = list(loader)
    loader.start_at(11)
    resumed = list(loader)
    assert len(resumed) == len(uninterrupted) - 11
    for a, b in zip(uninterrupted[11:], resumed):
        assert torch.equal(a.labels, b.labels) and torch.equal(a.dense_features, b.dense_features)
    assert len(list(loader)) == len(uninterrupted)


def test_order_is_a_function_of_seed_and_epoch(synthetic_criteo: str) -> None:
    def labels_of(seed: int, epoch: int, prefetch: int = 2) -> torch.Tensor:
        loader = ParquetBatchLoader(synthetic_criteo, "train", 1000, shuffle=True,
                                    shuffle_buffer=1000, seed=seed, prefetch=prefetch)
        loader.set_epoch(epoch)
        return torch.cat([b.dense_features[:, 0] for b in loader])

    base = labels_of(0, 0)
    assert torch.equal(base, labels_of(0, 0, prefetch=0))
    assert not torch.equal(base, labels_of(0, 1))
    assert not torch.equal(base, labels_of(1, 0))
    assert torch.equal(base.sort().values, labels_of(1, 0).sort().values)


def test_drop_last_and_empty_last_batches(synthetic_criteo: str) -> None:
    rows = Schema.load(synthetic_criteo).splits["test"]
    loader = ParquetBatchLoader(synthetic_criteo, "test", rows // 2 + 1, drop_last=True)
    assert len(loader) == 1 and len(list(loader)) == 1
    sizes = [[len(b.labels) for b in ParquetBatchLoader(synthetic_criteo, "test", rows,
                                                           rank=r, world_size=rows + 1)]
             for r in (0, rows)]
    assert sizes == [[1], [0]]


def test_an_empty_split_yields_no_batches(tmp_path) -> None:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path / "tiny")
    write_synthetic("avazu", 5, output, split="100,0,0")
    loader = ParquetBatchLoader(output, "val", 4)
    assert Schema.load(output).splits["val"] == 0 and len(loader) == 0 and list(loader) == []
    assert sum(len(b.labels) for b in ParquetBatchLoader(output, "train", 4)) == 5
