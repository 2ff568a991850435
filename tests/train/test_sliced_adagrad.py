"""Slice gradients: the same training as full-size gradients with torch's Adagrad."""

from __future__ import annotations

import copy
import random

import torch

from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import Supernet
from nasrec_torchrec.space import get_space, sample_any_op_any_conn, sample_single_op_any_conn
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad


def test_sliced_adagrad_equals_adagrad_on_full_gradients() -> None:
    torch.manual_seed(0)
    space = get_space("nasrec-full")
    reference = Supernet(space, 3, 4, embedding_dim=4)
    sliced = copy.deepcopy(reference)
    store = SliceGradients()
    attach_slice_gradients(sliced, store)
    adagrad = torch.optim.Adagrad(reference.parameters(), lr=0.05, eps=1e-8)
    sliced_adagrad = SlicedAdagrad(sliced.parameters(), store, lr=0.05, eps=1e-8)
    rng = random.Random(0)
    for step in range(12):
        sampler = sample_any_op_any_conn if step % 3 == 0 else sample_single_op_any_conn
        architecture = sampler(space, rng)
        dense, sparse = torch.randn(8, 3), torch.randn(8, 4, 4)
        labels = torch.randint(0, 2, (8,)).float()
        for model, optimizer in ((reference, adagrad), (sliced, sliced_adagrad)):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(dense, sparse, architecture), labels)
            loss.backward()
            optimizer.step()
        assert all(p.grad is None for p in sliced.parameters())
        assert not store.entries
    for (name, expected), actual in zip(reference.named_parameters(), sliced.parameters()):
        torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5, msg=name)


def test_slice_gradients_hold_only_the_used_slices() -> None:
    torch.manual_seed(0)
    space = get_space("official-full")
    supernet = Supernet(space, 13, 26)
    store = SliceGradients()
    attach_slice_gradients(supernet, store)
    architecture = sample_single_op_any_conn(space, random.Random(1))
    supernet(torch.randn(4, 13), torch.randn(4, 26, 16), architecture).sum().backward()
    recorded = sum(grad.numel() for _, _, _, grad in store.entries)
    total = sum(p.numel() for p in supernet.parameters())
    assert 0 < recorded < 0.1 * total
    assert all(p.grad is None for p in supernet.parameters())
