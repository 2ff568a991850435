"""BatchNorm on a found architecture's dense operators (`NASRecNet(batch_norm=True)`)."""

from __future__ import annotations

import torch
from torch import nn

from nasrec_torchrec.nn.elastic import ElasticLayerNorm
from nasrec_torchrec.nn.networks import NASRecNet
from nasrec_torchrec.space import Architecture, Block

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def _architecture() -> Architecture:
    first = Block(dense_sources=(0,), sparse_sources=(0,), dense_left=0, dense_right=0, dense_ops=("flat_fc", "fm"),
                  sparse_ops=("embed_fc",), dense_dim=8, sparse_dim=2)
    last = Block(dense_sources=(1,), sparse_sources=(0,), dense_left=0, dense_right=0, dense_ops=("fc",),
                 sparse_ops=("embed_fc",), dense_dim=4, sparse_dim=2)
    return Architecture(blocks=(first, last), project_concat_rows=1)


def _norms(net: NASRecNet) -> dict[str, type]:
    return {name: type(module) for name, module in net.named_modules()
            if name.endswith(".norm")}


@pytest.mark.parametrize("layer_norm", [True, False])
def test_dense_operators_get_batch_norm_and_sparse_ones_keep_layer_norm(layer_norm) -> None:
    net = NASRecNet(_architecture(), 0, 3, embedding_dim=4, layer_norm=layer_norm,
                    batch_norm=True)
    norms = _norms(net)
    dense = {k: v for k, v in norms.items() if ".dense_ops." in k}
    sparse = {k: v for k, v in norms.items() if ".sparse_ops." in k}
    assert set(dense) == {"blocks.1.dense_ops.flat_fc.norm", "blocks.1.dense_ops.fm.norm",
                          "blocks.2.dense_ops.fc.norm"}
    assert set(dense.values()) == {nn.BatchNorm1d}
    assert set(sparse.values()) == ({ElasticLayerNorm} if layer_norm else set())
    assert net.blocks["1"].dense_ops["flat_fc"].norm.num_features == 8


def test_batch_norm_normalises_each_unit_over_the_batch_in_training() -> None:
    torch.manual_seed(0)
    net = NASRecNet(_architecture(), 0, 3, embedding_dim=4, batch_norm=True).train()
    op = net.blocks["2"].dense_ops["fc"]
    captured = {}
    op.norm.register_forward_hook(lambda module, args, out: captured.update(out=out))
    net(torch.zeros(16, 0), torch.randn(16, 3, 4))
    out = captured["out"]  # BatchNorm's output: zero mean, unit variance per unit
    torch.testing.assert_close(out.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    assert ((out.var(0, unbiased=False) - 1).abs() < 0.01).all()


def test_batch_norm_model_trains_and_runs_in_eval_on_running_statistics() -> None:
    torch.manual_seed(0)
    net = NASRecNet(_architecture(), 0, 3, embedding_dim=4, batch_norm=True)
    sparse = torch.randn(32, 3, 4)
    net(torch.zeros(32, 0), sparse).sum().backward()
    assert net.blocks["1"].dense_ops["flat_fc"].norm.weight.grad is not None
    net.eval()
    one = net(torch.zeros(1, 0), sparse[:1])
    torch.testing.assert_close(one, net(torch.zeros(32, 0), sparse)[:1])  # no batch effect
