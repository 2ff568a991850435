"""BatchNorm on the dense operators of a standalone model, in place of their LayerNorm.

With the BARS recipe (N(0, 1e-4) tables, an L2 regulariser on the rows, Adam 1e-3) the
embeddings stay tiny for many steps: LayerNorm normalises across a sample's units, so a
layer's bias swamps the signal, while BatchNorm normalises each unit across the batch and
lifts it. The hand-made baselines owe their speed on Frappe to it; a found architecture gets
the same with `NASRecNet(..., batch_norm=True)`. The supernet keeps LayerNorm (running
statistics shared by every path would not be any subnet's).
"""

from __future__ import annotations

from torch import nn

from nasrec_torchrec.nn.elastic import ElasticLayerNorm


def use_batch_norm(blocks: nn.ModuleDict, layer_norm: bool) -> None:
    """Give every dense operator (and the block-level FM) of `blocks` a `BatchNorm1d` over its
    d units instead of its LayerNorm; the sparse operators keep theirs only if `layer_norm`.

    The blocks must have been built with LayerNorm (that marks the norms' places and widths).
    """
    for block in blocks.values():
        dense = list(block.dense_ops.values()) + ([block.fm] if block.fm is not None else [])
        for operator in dense:
            if isinstance(getattr(operator, "norm", None), ElasticLayerNorm):
                operator.norm = nn.BatchNorm1d(operator.norm.weight.shape[0])
        if not layer_norm:
            for operator in block.sparse_ops.values():
                operator.norm = None
