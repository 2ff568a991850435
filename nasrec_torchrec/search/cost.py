"""A candidate's FLOPs per sample in fvcore's convention, counted in milliseconds.

`analysis.flops` traces the subnet with fvcore's `FlopCountAnalysis` (a TorchScript trace:
0.2–0.5 s a candidate). The body's only ops fvcore counts are matrix products (one FLOP per
multiply-add; `baddbmm` counted as its `bmm`, as `analysis.flops` registers it), LayerNorm
(5 FLOPs per element with its affine weights, 4 without) and BatchNorm in eval mode (2 per
element with affine weights, 1 without; a BatchNorm net is counted in eval mode); the
rest (cat, index, softmax, sigmoid, elementwise ops) count 0. `count_flops` counts exactly
these from the dispatched ATen ops of one batch-1 forward of the already built subnet, so it
gives fvcore's figure (pinned against it in the tests) without a trace.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nasrec_torchrec.analysis.flops import ModelCost

aten = torch.ops.aten


class _FlopCounter(TorchDispatchMode):
    """Counts fvcore-convention FLOPs of the ops dispatched under it."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        packet = func._overloadpacket
        if packet is aten.mm:
            self.flops += _matmul(args[0].shape, args[1].shape)
        elif packet is aten.addmm:
            self.flops += _matmul(args[1].shape, args[2].shape)
        elif packet is aten.bmm:
            self.flops += _matmul(args[0].shape, args[1].shape)
        elif packet is aten.baddbmm:
            self.flops += _matmul(args[1].shape, args[2].shape)
        elif packet is aten.native_layer_norm:
            affine = len(args) > 2 and args[2] is not None
            self.flops += math.prod(args[0].shape) * (5 if affine else 4)
        elif packet is aten.native_batch_norm and not args[5]:  # eval mode
            affine = args[1] is not None
            self.flops += math.prod(args[0].shape) * (2 if affine else 1)
        return func(*args, **(kwargs or {}))


def _matmul(left: Any, right: Any) -> int:
    """Multiply-adds of `[..., M, K] @ [..., K, N]`."""
    return math.prod(left) * right[-1]


def count_flops(net: torch.nn.Module, dense_in_features: int, num_sparse_features: int,
                embedding_dim: int) -> int:
    """fvcore FLOPs of `net(dense [1, Dn], sparse [1, F, E])`."""
    dense = torch.zeros(1, dense_in_features)
    sparse = torch.zeros(1, num_sparse_features, embedding_dim)
    counter = _FlopCounter()
    with torch.no_grad(), counter:
        net(dense, sparse)
    return counter.flops


def subnet_cost(net: Any) -> ModelCost:
    """`ModelCost` (fvcore FLOPs per sample, dense parameters) of a built `NASRecNet`."""
    flops = count_flops(net, net.dense_in_features, net.num_sparse_features, net.embedding_dim)
    return ModelCost(flops=flops, params=sum(p.numel() for p in net.parameters()))
