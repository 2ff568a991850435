"""Slice gradients: the same training as full-size gradients with torch's Adagrad."""

from __future__ import annotations

import random

import torch
from sliced_steps import run_steps, supernet_pair

from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import Supernet
from nasrec_torchrec.space import get_space, sample_single_op_any_conn
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad


def test_sliced_adagrad_equals_adagrad_on_full_gradients() -> None:
    space = get_space("nasrec-full")
    reference, sliced, store = supernet_pair(space)
    adagrad = torch.optim.Adagrad(reference.parameters(), lr=0.05, eps=1e-8)
    sliced_adagrad = SlicedAdagrad(sliced.parameters(), store, lr=0.05, eps=1e-8)

    def nothing_left() -> None:
        assert all(p.grad is None for p in sliced.parameters())
        assert not store.entries

    run_steps(space, (reference, sliced), (adagrad, sliced_adagrad), after_step=nothing_left)
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
