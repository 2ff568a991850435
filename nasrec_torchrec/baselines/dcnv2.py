"""DCN-V2 (Wang et al. 2021): a cross network v2 stacked with or parallel to a DNN."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchrec.modules.crossnet import CrossNet, LowRankCrossNet

from nasrec_torchrec.baselines.layers import DNN, flat_inputs
from nasrec_torchrec.baselines.options import check_common
from nasrec_torchrec.errors import NASRecError

STRUCTURES = ("parallel", "stacked")


@dataclass
class DCNv2Options:
    """DCN-V2's hyper-parameters (defaults: 3 full-rank cross layers and a 400-400-400 DNN in
    parallel, BARS' structure on Frappe).

    Args:
        num_cross_layers: cross layers `x_{l+1} = x_0 ∘ (W_l x_l + b_l) + x_l`.
        low_rank: 0 for full-rank `W_l` (`torchrec.modules.crossnet.CrossNet`); r > 0 for
            `W_l = U_l V_l` of rank r (`LowRankCrossNet`).
        structure: "parallel" (cross and DNN side by side, outputs concatenated) or
            "stacked" (the DNN on top of the cross network).
        layer_sizes: the DNN's hidden layers (empty: cross network only).
        dropout: dropout after each DNN layer.
        batch_norm: BatchNorm in the DNN.
    """

    num_cross_layers: int = 3
    low_rank: int = 0
    structure: str = "parallel"
    layer_sizes: tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.0
    batch_norm: bool = False

    def validate(self, model: str) -> None:
        """Raise `NASRecError` for a bad value."""
        check_common(model, self.dropout, self.layer_sizes)
        if self.structure not in STRUCTURES:
            raise NASRecError(f"--model {model}: option 'structure': {self.structure!r} "
                              f"is not one of {STRUCTURES}")
        if self.num_cross_layers < 1 or self.low_rank < 0:
            raise NASRecError(f"--model {model}: options 'num_cross_layers' "
                              f"({self.num_cross_layers}) must be >= 1 and 'low_rank' "
                              f"({self.low_rank}) >= 0")


class DCNv2Body(nn.Module):
    """DCN-V2 over `x_0 = [flattened embeddings; dense features]` (width F * E + Dn).

    Args:
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        options: `DCNv2Options`.

    Shapes: `forward(dense [B, Dn], sparse [B, F, E]) -> logits [B]`.

    Example::

        body = DCNv2Body(13, 26, 16, DCNv2Options(low_rank=64, structure="stacked"))
        logits = body(torch.randn(4, 13), torch.randn(4, 26, 16))  # [4]
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 options: DCNv2Options | None = None) -> None:
        super().__init__()
        self.options: DCNv2Options = options or DCNv2Options()
        opts = self.options
        width = num_sparse_features * embedding_dim + dense_in_features
        self.cross: nn.Module = (
            LowRankCrossNet(width, opts.num_cross_layers, opts.low_rank) if opts.low_rank
            else CrossNet(width, opts.num_cross_layers))
        self.dnn = DNN(width, opts.layer_sizes, opts.dropout, opts.batch_norm)
        head_in = (width + self.dnn.out_features if opts.structure == "parallel"
                   else self.dnn.out_features)
        self.parallel: bool = opts.structure == "parallel"
        self.logit = nn.Linear(head_in, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        x0 = flat_inputs(dense, sparse)
        crossed = self.cross(x0)
        if self.parallel:
            head_in = torch.cat([crossed, self.dnn(x0)], dim=1)
        else:
            head_in = self.dnn(crossed)
        return self.logit(head_in).squeeze(1)
