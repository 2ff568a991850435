"""BatchNorm in the supernet (`ElasticBatchNorm`, `Supernet(batch_norm=True)`): on any path it
IS the BatchNorm subnet with inherited weights and statistics; and `recalibrate_batch_norm`."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nasrec_torchrec.nn.batch_norm import recalibrate_batch_norm
from nasrec_torchrec.nn.elastic import ElasticBatchNorm, ElasticLayerNorm
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.space import SPACES, get_space, sample_any_op_any_conn

from test_networks import SAMPLERS, assert_path_equals_subnet

pytestmark = pytest.mark.usefixtures("one_thread")


def _exact(norm: ElasticBatchNorm, width: int) -> nn.BatchNorm1d:
    exact = nn.BatchNorm1d(width)
    exact.load_state_dict(norm.sliced_state(width))
    return exact


@pytest.mark.parametrize("momentum", [0.1, None])
def test_elastic_batch_norm_on_a_slice_is_batch_norm_of_that_width(momentum) -> None:
    torch.manual_seed(0)
    norm = ElasticBatchNorm(6)
    norm.momentum = momentum
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    before = {name: value.clone() for name, value in norm.state_dict().items()}
    exact = _exact(norm, 4)
    exact.momentum = momentum
    x = torch.randn(8, 4) * 3 + 1
    torch.testing.assert_close(norm(x), exact(x), atol=0, rtol=0)  # training: batch stats
    torch.testing.assert_close(norm.running_mean[:4], exact.running_mean, atol=0, rtol=0)
    torch.testing.assert_close(norm.running_var[:4], exact.running_var, atol=0, rtol=0)
    assert int(norm.num_batches_tracked) == 1
    for name in ("running_mean", "running_var"):  # the units beyond the slice are untouched
        torch.testing.assert_close(getattr(norm, name)[4:], before[name][4:], atol=0, rtol=0)
    assert not torch.equal(norm.running_mean[:4], before["running_mean"][:4])
    norm.eval()
    exact.eval()
    torch.testing.assert_close(norm(x), exact(x), atol=0, rtol=0)


def test_elastic_batch_norm_at_full_width_is_batch_norm_bit_for_bit() -> None:
    torch.manual_seed(0)
    norm, plain = ElasticBatchNorm(5), nn.BatchNorm1d(5)
    assert set(norm.state_dict()) == set(plain.state_dict())
    for _ in range(3):
        x = torch.randn(7, 5)
        assert torch.equal(norm(x), plain(x))
    assert all(torch.equal(norm.state_dict()[k], plain.state_dict()[k]) for k in plain.state_dict())


def test_batch_norm_supernet_has_batch_norm_on_dense_operators_only() -> None:
    supernet = Supernet(get_space("official-full"), 3, 4, embedding_dim=4, batch_norm=True)
    block = supernet.blocks["1"]
    assert all(isinstance(op.norm, ElasticBatchNorm) for op in block.dense_ops.values())
    assert all(isinstance(op.norm, ElasticLayerNorm) for op in block.sparse_ops.values())
    assert isinstance(block.fm.norm, ElasticBatchNorm)
    net = NASRecNet.from_supernet(supernet, sample_any_op_any_conn(get_space("official-full"),
                                                                   random.Random(0)))
    assert net.batch_norm
    kinds = {type(m) for name, m in net.named_modules() if ".dense_ops." in name
             and name.endswith(".norm")}
    assert kinds == {nn.BatchNorm1d}


def test_batch_norm_subnet_builds_the_same_weights_and_keys_as_before() -> None:
    """Norms draw no random number: a BatchNorm subnet's other weights are those of the
    LayerNorm one built from the same seed, and each norm holds BatchNorm1d's keys."""
    architecture = sample_any_op_any_conn(get_space("nasrec-full"), random.Random(2))
    torch.manual_seed(3)
    layer = NASRecNet(architecture, 3, 4, embedding_dim=4)
    torch.manual_seed(3)
    batch = NASRecNet(architecture, 3, 4, embedding_dim=4, batch_norm=True)
    batch_state = batch.state_dict()
    for name, value in layer.state_dict().items():
        if ".dense_ops." in name and ".norm." in name or name.startswith("blocks.") and \
                ".fm.norm." in name:
            prefix = name.rsplit(".", 1)[0]
            assert {f"{prefix}.{key}" for key in nn.BatchNorm1d(1).state_dict()} <= set(
                batch_state)
        else:
            assert torch.equal(batch_state[name], value), name


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_batch_norm_supernet_path_is_the_inherited_subnet_in_train_and_eval(space_name) -> None:
    torch.manual_seed(0)
    space = get_space(space_name)
    supernet = Supernet(space, dense_in_features=5, num_sparse_features=6, embedding_dim=4,
                        batch_norm=True)
    rng = random.Random(7)
    for trial in range(30):
        dense, sparse = torch.randn(8, 5), torch.randn(8, 6, 4)
        architecture = SAMPLERS[trial % len(SAMPLERS)](space, rng)
        supernet.train()
        supernet.zero_grad(set_to_none=True)
        net = NASRecNet.from_supernet(supernet, architecture).train()
        assert_path_equals_subnet(supernet, net, architecture, dense, sparse)
        # both updated their running statistics from the same batch: still the same
        again = NASRecNet.from_supernet(supernet, architecture)
        for name, value in net.state_dict().items():
            torch.testing.assert_close(again.state_dict()[name], value, atol=1e-6, rtol=1e-5)
        supernet.eval()
        torch.testing.assert_close(supernet(dense, sparse, architecture),
                                   again.eval()(dense, sparse), atol=1e-5, rtol=0)


def test_recalibration_averages_the_batch_statistics() -> None:
    torch.manual_seed(0)
    architecture = sample_any_op_any_conn(get_space("nasrec-full"), random.Random(4))
    net = NASRecNet(architecture, 3, 4, embedding_dim=4, batch_norm=True)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms
    norm = norms[0]
    with torch.no_grad():
        norm.running_mean.fill_(5.0)  # stale statistics, forgotten by the recalibration
    inputs: list[torch.Tensor] = []
    hook = norm.register_forward_pre_hook(lambda _, args: inputs.append(args[0].detach()))
    batches = [(torch.randn(16, 3), torch.randn(16, 4, 4) * (k + 1)) for k in range(4)]
    assert recalibrate_batch_norm(net, batches) == 4
    hook.remove()
    assert len(inputs) == 4
    torch.testing.assert_close(norm.running_mean,
                               torch.stack([x.mean(0) for x in inputs]).mean(0))
    torch.testing.assert_close(norm.running_var,
                               torch.stack([x.var(0, unbiased=True) for x in inputs]).mean(0))
    assert all(m.momentum == 0.1 for m in norms)
    assert not net.training
