"""The whole model in plain torch ops, for `torch.export`: embeddings included, no TorchRec.

`ServingModel` copies a `NASRecModel`'s tables into one `nn.EmbeddingBag`-style weight and
keeps its body; it takes the sparse features as plain tensors in the layout of a
`KeyedJaggedTensor` (values of feature 0 for every row, then feature 1, ...; lengths `[F, B]`),
so a serving process loads the exported program with torch alone.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.model import NASRecModel

# The exported program's inputs and output, in order.
SERVING_INPUTS = ("dense_features", "sparse_values", "sparse_lengths")
SERVING_OUTPUT = "probability"


def capped_rows(rows: torch.Tensor, table_rows: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary rows -> rows of tables of `table_rows` rows (elementwise), the rule of
    `nasrec_torchrec.data.schema.table_row`: rows below the size are kept, rarer rows hashed
    over rows 1..table_rows-1, row 0 stays the missing / out-of-vocabulary row."""
    return torch.where(rows < table_rows, rows, 1 + torch.remainder(rows - 1, table_rows - 1))


class ServingModel(nn.Module):
    """Probabilities of a trained `NASRecModel` from plain tensors.

    Args:
        model: the trained model (its collection unsharded, in memory).
        table_rows: rows of each feature's table, in `model.feature_names` order (capped or
            full); ids are full-vocabulary rows and are mapped by `capped_rows`.
        table_dtype: the tables' dtype, e.g. `torch.float16` (pooled in it, then cast to
            float32 for the body).

    Shapes: `forward(dense_features [B, Dn] float32, sparse_values [N] int64,
    sparse_lengths [F, B] int64) -> probability [B] float32`, where `sparse_values` holds the
    full-vocabulary rows of feature 0 for rows 0..B-1, then of feature 1, ... (the order of
    `KeyedJaggedTensor.values()` with keys `feature_names`) and `sparse_lengths[f, b]` the ids
    of feature f in row b.

    Example::

        serving = ServingModel(model, table_rows=[500, 500, 10]).eval()
        probability = serving(*serving_inputs(batch.dense_features, batch.sparse_features,
                                              serving.feature_names))  # [B]
    """

    def __init__(self, model: NASRecModel, table_rows: Sequence[int],
                 table_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.feature_names: list[str] = list(model.feature_names)
        self.dense_in_features: int = model.dense_in_features
        tables = _tables_by_feature(model)
        if len(table_rows) != len(self.feature_names):
            raise NASRecError(f"{len(table_rows)} table sizes for {len(self.feature_names)} "
                              "sparse features")
        for name, rows in zip(self.feature_names, table_rows):
            if tables[name].shape[0] != rows:
                raise NASRecError(f"feature '{name}': the table has {tables[name].shape[0]} "
                                  f"rows, expected {rows}")
        weight = torch.cat([tables[name].detach().float().cpu() for name in self.feature_names])
        self.weight = nn.Parameter(weight.to(table_dtype), requires_grad=False)
        sizes = torch.tensor(list(table_rows), dtype=torch.int64)
        self.register_buffer("table_rows", sizes)
        self.register_buffer("row_offsets", torch.cumsum(sizes, 0) - sizes)
        self.body = model.body

    def forward(self, dense_features: torch.Tensor, sparse_values: torch.Tensor,
                sparse_lengths: torch.Tensor) -> torch.Tensor:
        num_features, batch = sparse_lengths.shape
        bag_lengths = sparse_lengths.reshape(-1)
        bag_offsets = torch.cumsum(bag_lengths, 0) - bag_lengths
        feature_ends = torch.cumsum(sparse_lengths.sum(dim=1), 0)
        positions = torch.arange(sparse_values.shape[0], device=sparse_values.device)
        feature = torch.searchsorted(feature_ends, positions, right=True)
        rows = capped_rows(sparse_values, self.table_rows[feature]) + self.row_offsets[feature]
        pooled = nn.functional.embedding_bag(rows, self.weight, bag_offsets, mode="sum")
        sparse = pooled.float().view(num_features, batch, -1).transpose(0, 1)
        return torch.sigmoid(self.body(dense_features, sparse))


def _tables_by_feature(model: NASRecModel) -> dict[str, torch.Tensor]:
    """Each sparse feature's table weight `[rows, E]` of the model's collection."""
    collection = model.embedding_bag_collection
    tables = {}
    for config in collection.embedding_bag_configs():
        weight = collection.embedding_bags[config.name].weight
        if weight.is_meta:
            raise NASRecError(f"table '{config.name}' is on the meta device: load the trained "
                              "weights first")
        for name in config.feature_names:
            tables[name] = weight
    return tables


def serving_inputs(dense_features: torch.Tensor, sparse_features: KeyedJaggedTensor,
                   feature_names: Optional[Sequence[str]] = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(dense [B, Dn] float32, values [N] int64, lengths [F, B] int64)` of a batch, features
    in `feature_names` order (default: the KJT's keys)."""
    names = list(feature_names or sparse_features.keys())
    jagged = sparse_features.to_dict()
    values = torch.cat([jagged[name].values().to(torch.int64) for name in names])
    lengths = torch.stack([jagged[name].lengths().to(torch.int64) for name in names])
    return dense_features.float(), values, lengths
