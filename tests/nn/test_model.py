"""The TorchRec-facing model: features by name, the train wrapper, official architectures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from torchrec.datasets.utils import Batch
from torchrec.modules.embedding_configs import EmbeddingBagConfig
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.space import get_space, load_official, sample_single_op_any_conn

OFFICIAL_CONFIGS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "official_configs"
# (dense features, sparse features) of each dataset as `nasrec prepare` lays it out.
DATASET_SHAPES = {"criteo": (13, 26), "avazu": (0, 22), "kdd": (3, 10)}


def _collection(names: list[str], rows: int = 10, dim: int = 4) -> EmbeddingBagCollection:
    return EmbeddingBagCollection(tables=[
        EmbeddingBagConfig(name=f"t_{name}", embedding_dim=dim, num_embeddings=rows,
                           feature_names=[name]) for name in names])


def _kjt(names: list[str], ids: torch.Tensor) -> KeyedJaggedTensor:
    """One id per feature per row: `ids [B, F]` in the order of `names`."""
    batch = ids.shape[0]
    return KeyedJaggedTensor.from_lengths_sync(
        keys=names, values=ids.t().reshape(-1), lengths=torch.ones(batch * len(names),
                                                                   dtype=torch.int64))


def test_model_looks_features_up_by_name() -> None:
    torch.manual_seed(0)
    names = ["a", "b", "c"]
    ebc = _collection(names)
    architecture = sample_single_op_any_conn(get_space("nasrec-full"), random.Random(1))
    model = NASRecModel.for_architecture(ebc, 2, architecture)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    dense = torch.randn(2, 2)
    tables = {name: ebc.embedding_bags[f"t_{name}"].weight for name in names}
    stacked = torch.stack([tables[name][ids[:, i]] for i, name in enumerate(names)], dim=1)
    expected = model.body(dense, stacked)
    # The KJT lists the features in another order: the model must still match by name.
    shuffled = _kjt(["c", "a", "b"], ids[:, [2, 0, 1]])
    torch.testing.assert_close(model(dense, shuffled), expected)


def test_train_wrapper_returns_the_pipeline_shape() -> None:
    torch.manual_seed(0)
    names = ["a", "b"]
    model = NASRecModel.for_architecture(
        _collection(names), 3, sample_single_op_any_conn(get_space("nasrec-small"), random.Random(0)))
    batch = Batch(dense_features=torch.randn(4, 3), sparse_features=_kjt(names, torch.randint(0, 10, (4, 2))),
                  labels=torch.tensor([0, 1, 1, 0]))
    loss, (detached, logits, labels) = NASRecModelTrain(model)(batch)
    assert logits.shape == (4,) and labels.dtype == torch.float32
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    torch.testing.assert_close(loss, expected)
    assert loss.requires_grad and not detached.requires_grad


def test_supernet_model_takes_the_architecture_through() -> None:
    torch.manual_seed(0)
    names = ["a", "b"]
    space = get_space("nasrec-small")
    model = NASRecModel(_collection(names), 3, Supernet(space, 3, 2, embedding_dim=4))
    architecture = sample_single_op_any_conn(space, random.Random(4))
    dense, kjt = torch.randn(2, 3), _kjt(names, torch.tensor([[1, 2], [3, 4]]))
    model.body.set_architecture(architecture)
    torch.testing.assert_close(model(dense, kjt), model(dense, kjt, architecture))


@pytest.mark.skipif(not OFFICIAL_CONFIGS.is_dir(), reason="../shared/reference is absent")
@pytest.mark.parametrize("path", sorted(OFFICIAL_CONFIGS.glob("*.json")) if OFFICIAL_CONFIGS.is_dir()
                         else [], ids=lambda p: p.stem)
def test_official_configs_build_and_match_their_supernet(path: Path) -> None:
    torch.manual_seed(0)
    architecture, space_name = load_official(path)
    dense_in, sparse_in = DATASET_SHAPES[path.stem.split("_")[1]]
    supernet = Supernet(get_space(space_name), dense_in, sparse_in)
    net = NASRecNet.from_supernet(supernet, architecture)
    dense, sparse = torch.randn(4, dense_in), torch.randn(4, sparse_in, 16)
    torch.testing.assert_close(net(dense, sparse), supernet(dense, sparse, architecture),
                               atol=1e-5, rtol=0)
