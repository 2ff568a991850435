"""DeepFM (Guo et al. 2017): FM (first + second order) and a DNN on shared embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasrec_torchrec.baselines.layers import DNN, DenseField, flat_inputs, with_dense_field
from nasrec_torchrec.baselines.options import check_common


class FieldFactorizationMachine(nn.Module):
    """FM's second-order term over fields: `sum_{i<j} <v_i, v_j>`.

    Computed as `0.5 * sum_d ((sum_i v_id)^2 - sum_i v_id^2)`. Not
    `torchrec.modules.deepfm.FactorizationMachine`: that one flattens `[B, F, E]` to
    `[B, F * E]` and pairs every scalar with every other (cross-dimension products
    included), which is not the paper's FM.

    Shapes: `[B, F, E] -> [B, 1]`.

    Example::

        fm = FieldFactorizationMachine()
        second_order = fm(torch.randn(4, 10, 16))  # [4, 1]
    """

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        square_of_sum = fields.sum(dim=1).pow(2)
        sum_of_squares = fields.pow(2).sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_squares).sum(dim=1, keepdim=True)


@dataclass
class DeepFMOptions:
    """DeepFM's hyper-parameters (defaults: the paper's, 400-400-400 ReLU, dropout 0.5).

    Args:
        layer_sizes: the DNN's hidden layers; a 1-unit logit layer follows.
        dropout: dropout after each DNN layer.
        batch_norm: BatchNorm in the DNN (BARS' best Frappe setting uses it, dropout 0.2).
    """

    layer_sizes: tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.5
    batch_norm: bool = False

    def validate(self, model: str) -> None:
        """Raise `NASRecError` for a bad value."""
        check_common(model, self.dropout, self.layer_sizes)


class DeepFMBody(nn.Module):
    """DeepFM: `logit = linear + FM second order + DNN`, all over the same embeddings.

    The second-order term is the FM (`FieldFactorizationMachine`) over the F field
    embeddings (plus the dense features mapped to one more E-wide field when Dn > 0). The
    first-order term needs a weight per id, which a body over pooled embeddings does not
    have: it is approximated by a learned linear map of the flattened embeddings and the
    dense features (`w_f . e_id` per field: logistic regression when the embeddings train).
    The DNN sees the flattened embeddings and the dense features.

    Args:
        dense_in_features: Dn (may be 0).
        num_sparse_features: F.
        embedding_dim: E.
        options: `DeepFMOptions`.

    Shapes: `forward(dense [B, Dn], sparse [B, F, E]) -> logits [B]`.

    Example::

        body = DeepFMBody(0, 10, 10)
        logits = body(torch.empty(4, 0), torch.randn(4, 10, 10))  # [4]
    """

    def __init__(self, dense_in_features: int, num_sparse_features: int, embedding_dim: int,
                 options: DeepFMOptions | None = None) -> None:
        super().__init__()
        self.options: DeepFMOptions = options or DeepFMOptions()
        opts = self.options
        flat_width = num_sparse_features * embedding_dim + dense_in_features
        self.linear = nn.Linear(flat_width, 1)
        self.dense_field = DenseField.maybe(dense_in_features, embedding_dim)
        self.fm = FieldFactorizationMachine()
        self.dnn = DNN(flat_width, opts.layer_sizes, opts.dropout, opts.batch_norm)
        self.dnn_logit = nn.Linear(self.dnn.out_features, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        flat = flat_inputs(dense, sparse)
        fields = with_dense_field(sparse, dense, self.dense_field)
        logit = self.linear(flat) + self.fm(fields) + self.dnn_logit(self.dnn(flat))
        return logit.squeeze(1)
