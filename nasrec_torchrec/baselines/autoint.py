"""AutoInt+ (Song et al. 2019): stacked multi-head self-attention over the fields, plus a DNN."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nasrec_torchrec.baselines.layers import DNN, DenseField, flat_inputs, with_dense_field
from nasrec_torchrec.baselines.options import check_common
from nasrec_torchrec.errors import NASRecError


@dataclass
class AutoIntOptions:
    """AutoInt+'s hyper-parameters (defaults: the paper's 3 layers, 2 heads, 32 per head,
    residual connections, no scaling; a 400-400-400 DNN as in BARS' AutoInt+).

    Args:
        num_layers: stacked self-attention layers.
        num_heads: heads per layer.
        attention_dim: width of each head (a layer outputs num_heads * attention_dim).
        residual: add a linear projection of the layer's input before the ReLU.
        scale: divide the attention scores by sqrt(attention_dim).
        layer_norm: LayerNorm after each attention layer.
        layer_sizes: the parallel DNN's hidden layers (empty: plain AutoInt, no DNN).
        dropout: dropout after each DNN layer.
        batch_norm: BatchNorm in the DNN.
    """

    num_layers: int = 3
    num_heads: int = 2
    attention_dim: int = 32
    residual: bool = True
    scale: bool = False
    layer_norm: bool = False
    layer_sizes: tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.0
    batch_norm: bool = False

    def validate(self, model: str) -> None:
        """Raise `NASRecError` for a bad value."""
        check_common(model, self.dropout, self.layer_sizes)
        for name in ("num_layers", "num_heads", "attention_dim"):
            if getattr(self, name) < 1:
                raise NASRecError(f"--model {model}: option '{name}': {getattr(self, name)} "
                                  "must be at least 1")


class MultiHeadSelfAttention(nn.Module):
    """One AutoInt interacting layer: every field attends to every field, per head.

    `head_h = softmax(Q_h K_hᵀ [/ sqrt(d)]) V_h` with `Q_h = x W_q^h` (no biases), heads
    concatenated; then `ReLU(heads + x W_res)` (with `residual`), then optional LayerNorm.

    Args:
        in_features: the input width per field.
        attention_dim: d, the width of each head.
        num_heads: H.
        residual: add the projected input.
        scale: scale the scores by 1/sqrt(d).
        layer_norm: LayerNorm at the end.

    Shapes: `[B, F, in_features] -> [B, F, H * d]`.

    Example::

        layer = MultiHeadSelfAttention(16, 32, 2)
        out = layer(torch.randn(4, 26, 16))  # [4, 26, 64]
    """

    def __init__(self, in_features: int, attention_dim: int, num_heads: int,
                 residual: bool = True, scale: bool = False, layer_norm: bool = False) -> None:
        super().__init__()
        width = attention_dim * num_heads
        self.num_heads: int = num_heads
        self.attention_dim: int = attention_dim
        self.scale: bool = scale
        self.query = nn.Linear(in_features, width, bias=False)
        self.key = nn.Linear(in_features, width, bias=False)
        self.value = nn.Linear(in_features, width, bias=False)
        self.residual: nn.Linear | None = (
            nn.Linear(in_features, width, bias=False) if residual else None)
        self.norm: nn.LayerNorm | None = nn.LayerNorm(width) if layer_norm else None
        self.out_features: int = width

    def _heads(self, projected: torch.Tensor) -> torch.Tensor:
        batch, fields, _ = projected.shape
        return projected.view(batch, fields, self.num_heads, self.attention_dim).transpose(1, 2)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        query, key, value = (self._heads(project(fields))
                             for project in (self.query, self.key, self.value))
        scores = torch.matmul(query, key.transpose(2, 3))  # [B, H, F, F]
        if self.scale:
            scores = scores / math.sqrt(self.attention_dim)
        heads = torch.matmul(scores.softmax(dim=-1), value)  # [B, H, F, d]
        output = heads.transpose(1, 2).flatten(2)  # [B, F, H * d]
        if self.residual is not None:
            output = output + self.residual(fields)
        output = torch.relu(output)
        if self.norm is not None:
            output = self.norm(output)
        return output


class AutoIntPlusBody(nn.Module):
    """AutoInt+: self-attention layers over the fields and a DNN in parallel, logits summed.

    The attention stack sees the F embeddings (plus the dense features mapped to one more
    E-wide field when Dn > 0); its output, flattened, goes through a linear logit layer.
    The DNN sees the flattened embeddings and the dense features.

    Args:
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        options: `AutoIntOptions`.

    Shapes: `forward(dense [B, Dn], sparse [B, F, E]) -> logits [B]`.

    Example::

        body = AutoIntPlusBody(13, 26, 16)
        logits = body(torch.randn(4, 13), torch.randn(4, 26, 16))  # [4]
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 options: AutoIntOptions | None = None) -> None:
        super().__init__()
        self.options: AutoIntOptions = options or AutoIntOptions()
        opts = self.options
        self.dense_field = DenseField.maybe(dense_in_features, embedding_dim)
        num_fields = num_sparse_features + (1 if self.dense_field is not None else 0)
        layers: list[nn.Module] = []
        width = embedding_dim
        for _ in range(opts.num_layers):
            layer = MultiHeadSelfAttention(width, opts.attention_dim, opts.num_heads,
                                           opts.residual, opts.scale, opts.layer_norm)
            layers.append(layer)
            width = layer.out_features
        self.attention = nn.Sequential(*layers)
        self.attention_logit = nn.Linear(num_fields * width, 1)
        self.dnn: DNN | None = None
        self.dnn_logit: nn.Linear | None = None
        if opts.layer_sizes:
            self.dnn = DNN(num_sparse_features * embedding_dim + dense_in_features,
                           opts.layer_sizes, opts.dropout, opts.batch_norm)
            self.dnn_logit = nn.Linear(self.dnn.out_features, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        fields = with_dense_field(sparse, dense, self.dense_field)
        logit = self.attention_logit(self.attention(fields).flatten(1))
        if self.dnn is not None and self.dnn_logit is not None:
            logit = logit + self.dnn_logit(self.dnn(flat_inputs(dense, sparse)))
        return logit.squeeze(1)
