"""The plain-torch serving model: it equals the TorchRec model on the same rows (multi-id bags,
capped tables, features by name), and it exports without changing the model it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchrec.modules.embedding_configs import EmbeddingBagConfig
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.data.schema import table_row
from nasrec_torchrec.nn.model import NASRecModel
from nasrec_torchrec.nn.operators import dot_product
from nasrec_torchrec.nn.serving import ServingModel, capped_rows, serving_inputs
from nasrec_torchrec.space import load_architecture

pytestmark = pytest.mark.usefixtures("one_thread")

# Uses FC, Dot-Product and EmbedFC.
ARCHITECTURE = Path(__file__).resolve().parents[2] / "specs" / "architectures" / "simple.json"
TABLE_ROWS = {"a": 7, "b": 50, "c": 2}


def _model() -> NASRecModel:
    torch.manual_seed(0)
    ebc = EmbeddingBagCollection(tables=[
        EmbeddingBagConfig(name=f"t_{name}", embedding_dim=8, num_embeddings=rows,
                           feature_names=[name]) for name, rows in TABLE_ROWS.items()])
    return NASRecModel.for_architecture(ebc, 3, load_architecture(str(ARCHITECTURE))).eval()


def _full_vocabulary_kjt(batch: int, seed: int) -> KeyedJaggedTensor:
    """0 to 3 ids per bag, full-vocabulary rows up to 100 (beyond every table), keys in
    another order than the collection's."""
    generator = torch.Generator().manual_seed(seed)
    keys = ["c", "a", "b"]
    lengths = torch.randint(0, 4, (len(keys) * batch,), generator=generator)
    values = torch.randint(0, 100, (int(lengths.sum()),), generator=generator)
    return KeyedJaggedTensor.from_lengths_sync(keys=keys, values=values, lengths=lengths)


def _table_kjt(kjt: KeyedJaggedTensor) -> KeyedJaggedTensor:
    """The same ids as rows of the capped tables (`data.schema.table_row`)."""
    jagged = kjt.to_dict()
    values = [torch.from_numpy(table_row(jagged[key].values().numpy(), TABLE_ROWS[key]))
              for key in kjt.keys()]
    return KeyedJaggedTensor.from_lengths_sync(keys=kjt.keys(), values=torch.cat(values),
                                               lengths=kjt.lengths())


def test_capped_rows_is_the_loaders_id_to_row_rule() -> None:
    rows = np.arange(0, 5000, dtype=np.int64)
    for table_rows in (2, 3, 100, 4999, 5000, 10_000):
        expected = table_row(rows, table_rows)
        got = capped_rows(torch.from_numpy(rows), torch.full((len(rows),), table_rows))
        np.testing.assert_array_equal(got.numpy(), expected)


def test_serving_model_equals_the_model_on_multi_id_bags_and_capped_tables() -> None:
    model = _model()
    serving = ServingModel(model, [TABLE_ROWS[name] for name in model.feature_names]).eval()
    kjt, dense = _full_vocabulary_kjt(6, seed=1), torch.randn(6, 3)
    with torch.no_grad():
        expected = torch.sigmoid(model(dense, _table_kjt(kjt)))
        got = serving(*serving_inputs(dense, kjt, serving.feature_names))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_exported_program_varies_batch_and_ids_and_leaves_the_model_as_it_was() -> None:
    model = _model()
    serving = ServingModel(model, [TABLE_ROWS[name] for name in model.feature_names])
    serving.eval().requires_grad_(False)
    kjt, dense = _full_vocabulary_kjt(5, seed=2), torch.randn(5, 3)
    example = serving_inputs(dense, kjt, serving.feature_names)
    batch, ids = torch.export.Dim("batch"), torch.export.Dim("num_ids")
    dot_product._pair_indices.cache_clear()  # the trace is the first to fill it
    program = torch.export.export(serving, example,
                                  dynamic_shapes=({0: batch}, {0: ids}, {1: batch}))
    with torch.no_grad():
        logits = model(dense, _table_kjt(kjt))  # no fake tensor was cached while tracing
    assert type(logits) is torch.Tensor
    torch.testing.assert_close(program.module()(*example), torch.sigmoid(logits),
                               rtol=0, atol=1e-6)
    for size, seed in ((1, 3), (9, 4)):
        kjt, dense = _full_vocabulary_kjt(size, seed), torch.randn(size, 3)
        expected = torch.sigmoid(model(dense, _table_kjt(kjt)))
        got = program.module()(*serving_inputs(dense, kjt, serving.feature_names))
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_half_precision_tables_stay_close_to_fp32() -> None:
    model = _model()
    names = model.feature_names
    full = ServingModel(model, [TABLE_ROWS[name] for name in names]).eval()
    half = ServingModel(model, [TABLE_ROWS[name] for name in names], torch.float16).eval()
    assert half.weight.dtype == torch.float16
    inputs = serving_inputs(torch.randn(16, 3), _full_vocabulary_kjt(16, seed=5), names)
    with torch.no_grad():
        difference = (half(*inputs) - full(*inputs)).abs().max()
    assert 0 < difference < 1e-2
