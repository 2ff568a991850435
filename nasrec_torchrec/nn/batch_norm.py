"""BatchNorm on the dense operators, in place of their LayerNorm, and its recalibration.

With the BARS recipe (N(0, 1e-4) tables, an L2 regulariser on the rows, Adam 1e-3) the
embeddings stay tiny for many steps: LayerNorm normalises across a sample's units, so a
layer's bias swamps the signal, while BatchNorm normalises each unit across the batch and
lifts it. The hand-made baselines owe their speed on Frappe to it; a found architecture gets
the same with `NASRecNet(..., batch_norm=True)`, a supernet with `Supernet(...,
batch_norm=True)` (`ElasticBatchNorm`: the first d units' statistics).

The supernet's running statistics are shared by every path, so they are no subnet's: a
subnet materialised from it is scored after `recalibrate_batch_norm` (SPOS-style: the running
statistics re-estimated as the plain average over a few training batches).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from nasrec_torchrec.nn.elastic import ElasticBatchNorm


def plain_batch_norm(blocks: nn.ModuleDict) -> None:
    """Replace every `ElasticBatchNorm` of `blocks` (built at its exact width, in a subnet)
    with an `nn.BatchNorm1d` of that width: the same function and state-dict keys, a plain
    module for serving."""
    for block in blocks.values():
        for module in list(block.modules()):
            norm = getattr(module, "norm", None)
            if isinstance(norm, ElasticBatchNorm):
                module.norm = nn.BatchNorm1d(norm.num_features)


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of `module` (elastic ones included)."""
    return [layer for layer in module.modules()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, batches: Iterable[Any],
                           forward: Optional[Callable[[nn.Module, Any], Any]] = None) -> int:
    """Re-estimate the running statistics of every BatchNorm of `net` on `batches`.

    Each BatchNorm's running statistics are reset and, with `momentum` None, become the
    plain average of the batches' statistics (mean of the batch means; mean of the unbiased
    batch variances); the momenta are then restored. The forwards run in training mode
    without autograd; `net` must have no dropout active (a materialised subnet of a
    supernet has none). `net` is left in eval mode. Draws no random number.

    Args:
        net: the model, e.g. a `NASRecNet` with BatchNorm.
        batches: its inputs, each a tuple of arguments: `(dense [B, Dn], sparse [B, F, E])`.
        forward: `forward(net, batch)` instead of `net(*batch)`.

    Returns:
        The number of batches run.

    Example::

        recalibrate_batch_norm(subnet, [(dense, sparse) for dense, sparse, _ in chunks])
    """
    norms = batch_norms(net)
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    count = 0
    net.train()
    try:
        for batch in batches:
            if forward is None:
                net(*batch)
            else:
                forward(net, batch)
            count += 1
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        net.eval()
    return count
