"""Invariant 1: on any path the supernet IS the standalone subnet with inherited weights."""

from __future__ import annotations

import random

import pytest
import torch

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.space import (SPACES, get_space, sample_any_op_any_conn, sample_full,
                                   sample_single_op_any_conn, sample_single_op_single_conn)

# The full path is the costliest to check (its gradients are largest): 1 draw in 10.
SAMPLERS = (sample_single_op_any_conn,) * 4 + (sample_any_op_any_conn,) * 3 + (
    sample_single_op_single_conn,) * 2 + (sample_full,)


def _sliced_gradients(supernet: Supernet, net: NASRecNet) -> dict[str, torch.Tensor]:
    """The supernet's gradients, sliced like the weights `from_supernet` copies."""
    saved = {}
    for name, param in supernet.named_parameters():
        saved[name] = param.data
        param.data = param.grad if param.grad is not None else torch.full_like(param, float("nan"))
    try:
        sliced = NASRecNet.from_supernet(supernet, net.architecture)
    finally:
        for name, param in supernet.named_parameters():
            param.data = saved[name]
    return dict(sliced.named_parameters())


def _grad_mass(module: torch.nn.Module) -> float:
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_supernet_path_equals_inherited_subnet_forward_and_gradients(space_name: str) -> None:
    torch.manual_seed(0)
    space = get_space(space_name)
    supernet = Supernet(space, dense_in_features=5, num_sparse_features=6, embedding_dim=4)
    rng = random.Random(7)
    dense, sparse = torch.randn(3, 5), torch.randn(3, 6, 4)
    for trial in range(100):
        architecture = SAMPLERS[trial % len(SAMPLERS)](space, rng)
        supernet.zero_grad(set_to_none=True)
        net = NASRecNet.from_supernet(supernet, architecture)
        assert_path_equals_subnet(supernet, net, architecture, dense, sparse)


def assert_path_equals_subnet(supernet: Supernet, net: NASRecNet, architecture,
                              dense: torch.Tensor, sparse: torch.Tensor) -> None:
    """The supernet on `architecture` and its materialised subnet `net` (fresh gradients)
    give the same logits, and one backward gives the subnet's gradients on the supernet's
    slices and zero elsewhere."""
    super_logits = supernet(dense, sparse, architecture)
    net_logits = net(dense, sparse)
    torch.testing.assert_close(super_logits, net_logits, atol=1e-5, rtol=0)
    super_logits.sum().backward()
    net_logits.sum().backward()
    expected = _sliced_gradients(supernet, net)
    for name, param in net.named_parameters():
        torch.testing.assert_close(expected[name], param.grad, atol=1e-5, rtol=1e-4,
                                   msg=lambda m: f"{architecture}: {name}: {m}")
    # Slices are disjoint, so equal gradient mass means every unused weight got zero.
    assert _grad_mass(supernet) == pytest.approx(_grad_mass(net), rel=1e-4, abs=1e-6)


def test_dead_blocks_are_not_built_and_get_no_gradient() -> None:
    space = get_space("nasrec-small")
    rng = random.Random(3)
    supernet = Supernet(space, 4, 3, embedding_dim=4)
    for _ in range(50):
        architecture = sample_single_op_single_conn(space, rng)
        live = architecture.liveness()
        dead = [b for b in range(1, space.num_blocks + 1) if not live.block_live(b)]
        if dead:
            break
    else:
        pytest.fail("no architecture with a dead block drawn")
    net = NASRecNet(architecture, 4, 3, embedding_dim=4)
    assert sorted(int(name) for name in net.blocks) == [
        b for b in range(1, space.num_blocks + 1) if live.block_live(b)]
    supernet.zero_grad(set_to_none=True)
    supernet(torch.randn(2, 4), torch.randn(2, 3, 4), architecture).sum().backward()
    for block in dead:
        assert all(p.grad is None for p in supernet.blocks[str(block)].parameters())


def test_no_dense_features_is_supported() -> None:
    """Avazu and Frappe have no dense features: the raw dense input is [B, 0]."""
    torch.manual_seed(1)
    space = get_space("nasrec-full")
    supernet = Supernet(space, dense_in_features=0, num_sparse_features=5, embedding_dim=4)
    rng = random.Random(0)
    for _ in range(20):
        architecture = sample_any_op_any_conn(space, rng)
        dense, sparse = torch.zeros(2, 0), torch.randn(2, 5, 4)
        net = NASRecNet.from_supernet(supernet, architecture)
        torch.testing.assert_close(supernet(dense, sparse, architecture), net(dense, sparse))


def test_architecture_of_another_space_is_rejected() -> None:
    small = Supernet(get_space("nasrec-small"), 3, 2, embedding_dim=4)
    architecture = sample_full(get_space("nasrec-full"), random.Random(0))
    with pytest.raises(NASRecError, match="block 1"):
        small(torch.randn(1, 3), torch.randn(1, 2, 4), architecture)


def test_supernet_without_architecture_uses_the_set_path() -> None:
    space = get_space("nasrec-small")
    supernet = Supernet(space, 3, 2, embedding_dim=4)
    with pytest.raises(NASRecError, match="no architecture"):
        supernet(torch.randn(1, 3), torch.randn(1, 2, 4))
    architecture = sample_single_op_any_conn(space, random.Random(0))
    supernet.set_architecture(architecture)
    dense, sparse = torch.randn(2, 3), torch.randn(2, 2, 4)
    torch.testing.assert_close(supernet(dense, sparse), supernet(dense, sparse, architecture))


def test_subnet_step_cost_follows_the_subnet() -> None:
    """A small path touches far fewer parameters than the supernet holds."""
    space = get_space("official-full")
    supernet = Supernet(space, 13, 26)
    rng = random.Random(0)
    architecture = sample_single_op_single_conn(space, rng)
    net = NASRecNet.from_supernet(supernet, architecture)
    assert sum(p.numel() for p in net.parameters()) < 0.2 * sum(
        p.numel() for p in supernet.parameters())


def test_nasrec_net_exports_with_torch_export() -> None:
    space = get_space("nasrec-full")
    architecture = sample_any_op_any_conn(space, random.Random(5))
    net = NASRecNet(architecture, 4, 3, embedding_dim=4).eval()
    dense, sparse = torch.randn(2, 4), torch.randn(2, 3, 4)
    exported = torch.export.export(net, (dense, sparse))
    torch.testing.assert_close(exported.module()(dense, sparse), net(dense, sparse))
    traced = torch.jit.trace(net, (dense, sparse))
    torch.testing.assert_close(traced(dense, sparse), net(dense, sparse))
