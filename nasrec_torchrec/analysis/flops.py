"""FLOPs and dense parameter counts of an architecture, per sample, as the paper counts them.

Convention: fvcore's `FlopCountAnalysis` with its default operator handles (plus `baddbmm`,
counted as the `bmm` it holds, so the attention scores count however they are written), so one
FLOP is one multiply-add (MAC) of a linear layer or matmul; LayerNorm and the other ops fvcore counts use
its own rules; the embedding lookups are not counted (fvcore skips `embedding_bag`, and the
body is traced alone on `dense [1, Dn]`, `sparse [1, F, E]`). `torch.utils.flop_counter`
would report twice these figures (2 FLOPs per multiply-add).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache

from nasrec_torchrec.space.architecture import Architecture

FLOPS_CONVENTION = ("fvcore FlopCountAnalysis of the body per sample (batch 1): 1 FLOP = 1 "
                    "multiply-add; embedding lookups excluded")


@dataclass(frozen=True)
class ModelCost:
    """Per-sample cost of an architecture's body.

    Args:
        flops: fvcore FLOPs (multiply-adds) for one sample.
        params: dense parameters of the standalone model (embedding tables excluded).
    """

    flops: int
    params: int

    @property
    def mflops(self) -> float:
        """`flops / 1e6`."""
        return self.flops / 1e6


def _baddbmm_flops(inputs, outputs) -> int:
    """fvcore handle of `baddbmm(input, batch1, batch2)`: the product's multiply-adds, as `bmm`."""
    from fvcore.nn.jit_handles import get_shape

    batch, rows, inner = get_shape(inputs[1])
    return batch * rows * inner * get_shape(inputs[2])[-1]


def count_flops(module, dense_in_features: int, num_sparse_features: int,
                embedding_dim: int = 16) -> int:
    """fvcore FLOPs of `module(dense [1, Dn], sparse [1, F, E])` (1 per multiply-add)."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    inputs = (torch.zeros(1, dense_in_features), torch.zeros(1, num_sparse_features, embedding_dim))
    was_training = module.training
    module.eval()
    fvcore_logger = logging.getLogger("fvcore")
    level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(module, inputs).set_op_handle(
                "aten::baddbmm", _baddbmm_flops)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            return int(analysis.total())
    finally:
        fvcore_logger.setLevel(level)
        module.train(was_training)


@lru_cache(maxsize=65536)
def _architecture_cost(architecture: Architecture, dense_in_features: int,
                       num_sparse_features: int, embedding_dim: int,
                       layer_norm: bool) -> ModelCost:
    import torch

    from nasrec_torchrec.nn.networks import NASRecNet

    with torch.random.fork_rng():  # building the net must not move the caller's RNG
        net = NASRecNet(architecture, dense_in_features, num_sparse_features,
                        embedding_dim=embedding_dim, layer_norm=layer_norm)
    params = sum(p.numel() for p in net.parameters())
    flops = count_flops(net, dense_in_features, num_sparse_features, embedding_dim)
    return ModelCost(flops=flops, params=params)


def architecture_cost(architecture: Architecture, dense_in_features: int,
                      num_sparse_features: int, embedding_dim: int = 16,
                      layer_norm: bool = True) -> ModelCost:
    """FLOPs per sample and dense parameters of `architecture`'s standalone `NASRecNet`.

    Functionally identical architectures share one cached figure (keyed by `canonical()`).

    Example::

        cost = architecture_cost(architecture, dense_in_features=13, num_sparse_features=26)
        cost.mflops, cost.params
    """
    return _architecture_cost(architecture.canonical(), dense_in_features, num_sparse_features,
                              embedding_dim, layer_norm)
