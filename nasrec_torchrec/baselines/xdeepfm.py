"""xDeepFM (Lian et al. 2018): a Compressed Interaction Network, a DNN and a linear term."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasrec_torchrec.baselines.layers import DNN, DenseField, flat_inputs, with_dense_field
from nasrec_torchrec.baselines.options import check_common
from nasrec_torchrec.errors import NASRecError


@dataclass
class XDeepFMOptions:
    """xDeepFM's hyper-parameters (defaults: the paper's CIN 200-200-200; a 400-400-400 DNN
    as in BARS).

    Args:
        cin_layer_sizes: feature maps of each CIN layer (at least one layer).
        layer_sizes: the DNN's hidden layers (empty: no DNN); a 1-unit logit layer follows.
        dropout: dropout after each DNN layer.
        batch_norm: BatchNorm in the DNN.
    """

    cin_layer_sizes: tuple[int, ...] = (200, 200, 200)
    layer_sizes: tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.0
    batch_norm: bool = False

    def validate(self, model: str) -> None:
        """Raise `NASRecError` for a bad value."""
        check_common(model, self.dropout, self.cin_layer_sizes, self.layer_sizes)
        if not self.cin_layer_sizes:
            raise NASRecError(f"--model {model}: option 'cin_layer_sizes': needs a layer")


class CompressedInteractionNetwork(nn.Module):
    """CIN: explicit vector-wise interactions of growing order, sum-pooled per feature map.

    Layer k: `X^k[h, :] = sum_{i, j} W^k[h, i, j] (X^{k-1}[i, :] ∘ X^0[j, :]) + b^k[h]`
    (a 1x1 convolution over the `H_{k-1} * m` outer products, no activation, as in the
    paper's equations); every layer's maps are summed over the embedding dimension and
    concatenated.

    Args:
        num_fields: m, the fields of `X^0`.
        layer_sizes: H_1, ..., H_K.

    Shapes: `[B, m, E] -> [B, H_1 + ... + H_K]`.

    Example::

        cin = CompressedInteractionNetwork(10, (200, 200, 200))
        pooled = cin(torch.randn(4, 10, 10))  # [4, 600]
    """

    def __init__(self, num_fields: int, layer_sizes: tuple[int, ...]) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        previous = num_fields
        for size in layer_sizes:
            convs.append(nn.Conv1d(previous * num_fields, size, kernel_size=1))
            previous = size
        self.convs = nn.ModuleList(convs)
        self.out_features: int = sum(layer_sizes)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        batch, _, dim = fields.shape
        hidden = fields
        pooled = []
        for conv in self.convs:
            outer = hidden.unsqueeze(2) * fields.unsqueeze(1)  # [B, H, m, E]
            hidden = conv(outer.reshape(batch, -1, dim))  # [B, H_k, E]
            pooled.append(hidden.sum(dim=2))
        return torch.cat(pooled, dim=1)


class XDeepFMBody(nn.Module):
    """xDeepFM: `logit = linear + CIN + DNN`, all over the same embeddings.

    The CIN sees the F embeddings (plus the dense features mapped to one more E-wide field
    when Dn > 0). The linear term needs a weight per id, which a body over pooled embeddings
    does not have: it is approximated by a learned linear map of the flattened embeddings
    and the dense features. The DNN sees the flattened embeddings and the dense features.

    Args:
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        options: `XDeepFMOptions`.

    Shapes: `forward(dense [B, Dn], sparse [B, F, E]) -> logits [B]`.

    Example::

        body = XDeepFMBody(13, 26, 16, XDeepFMOptions(cin_layer_sizes=(16, 16)))
        logits = body(torch.randn(4, 13), torch.randn(4, 26, 16))  # [4]
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 options: XDeepFMOptions | None = None) -> None:
        super().__init__()
        self.options: XDeepFMOptions = options or XDeepFMOptions()
        opts = self.options
        flat_width = num_sparse_features * embedding_dim + dense_in_features
        self.linear = nn.Linear(flat_width, 1)
        self.dense_field = DenseField.maybe(dense_in_features, embedding_dim)
        num_fields = num_sparse_features + (1 if self.dense_field is not None else 0)
        self.cin = CompressedInteractionNetwork(num_fields, opts.cin_layer_sizes)
        self.cin_logit = nn.Linear(self.cin.out_features, 1)
        self.dnn: DNN | None = None
        self.dnn_logit: nn.Linear | None = None
        if opts.layer_sizes:
            self.dnn = DNN(flat_width, opts.layer_sizes, opts.dropout, opts.batch_norm)
            self.dnn_logit = nn.Linear(self.dnn.out_features, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        flat = flat_inputs(dense, sparse)
        fields = with_dense_field(sparse, dense, self.dense_field)
        logit = self.linear(flat) + self.cin_logit(self.cin(fields))
        if self.dnn is not None and self.dnn_logit is not None:
            logit = logit + self.dnn_logit(self.dnn(flat))
        return logit.squeeze(1)
