"""Elastic layers: touching ranges are one slice, whole weights are used as they are."""

from __future__ import annotations

import random

import torch

from nasrec_torchrec.nn.elastic import ElasticLinear, merge_adjacent
from nasrec_torchrec.nn.networks import NASRecNet
from nasrec_torchrec.space import get_space, sample_full


def test_merge_adjacent_joins_touching_ranges_only() -> None:
    assert merge_adjacent(((0, 13), (13, 64), (80, 16), (96, 8))) == ((0, 77), (80, 24))
    assert merge_adjacent(((5, 3),)) == ((5, 3),)
    assert merge_adjacent(()) == ()


def test_touching_ranges_equal_their_concatenation() -> None:
    torch.manual_seed(0)
    layer = ElasticLinear(in_max=40, out_max=8)
    x = torch.randn(4, 30)
    ranges = ((0, 10), (10, 20))
    expected = x @ torch.cat([layer.weight[:5, 0:10], layer.weight[:5, 10:30]], 1).T
    assert torch.equal(layer(x, 5, ranges), expected + layer.bias[:5])


def _graph_node_names(tensor: torch.Tensor) -> set[str]:
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_exact_size_net_takes_no_slices_of_its_weights() -> None:
    """A slice node's backward builds a zero-filled gradient as large as the weight; a
    NASRecNet (every layer at its exact size) uses its weights whole."""
    torch.manual_seed(0)
    space = get_space("nasrec-small")
    net = NASRecNet(sample_full(space, random.Random(0)), 13, 26)
    logits = net(torch.randn(4, 13), torch.randn(4, 26, 16))
    names = _graph_node_names(logits)
    assert "AddmmBackward0" in names
    assert "SliceBackward0" not in names
