"""Shapes and known answers of every baseline body on tiny inputs with hand-set weights."""

from __future__ import annotations

import itertools

import pytest
import torch

from nasrec_torchrec.baselines import BASELINES, get_baseline
from nasrec_torchrec.baselines.autoint import MultiHeadSelfAttention
from nasrec_torchrec.baselines.dlrm import DotInteraction
from nasrec_torchrec.baselines.xdeepfm import CompressedInteractionNetwork

SMALL = {
    "linear": {},
    "dlrm": {"bottom_layer_sizes": (8,), "top_layer_sizes": (8,)},
    "deepfm": {"layer_sizes": (8, 8), "dropout": 0.1, "batch_norm": True},
    "autoint": {"num_layers": 2, "num_heads": 2, "attention_dim": 4, "layer_sizes": (8,),
                "layer_norm": True, "scale": True},
    "xdeepfm": {"cin_layer_sizes": (3, 5), "layer_sizes": (8,)},
    "dcnv2": {"num_cross_layers": 2, "layer_sizes": (8,), "batch_norm": True},
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_every_registered_baseline_has_a_small_config() -> None:
    assert set(SMALL) == set(BASELINES)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("dense_in", [0, 3])
def test_body_returns_one_logit_per_row_and_trains(name: str, dense_in: int) -> None:
    body = get_baseline(name, dense_in, 4, 8, **SMALL[name])
    dense, sparse = torch.randn(6, dense_in), torch.randn(6, 4, 8, requires_grad=True)
    logits = body(dense, sparse)
    assert logits.shape == (6,)
    logits.sum().backward()
    assert sparse.grad is not None and sparse.grad.abs().sum() > 0
    body.eval()
    assert torch.equal(body(dense, sparse), body(dense, sparse))  # no dropout in eval


@pytest.mark.parametrize("name", ["dlrm", "deepfm", "autoint", "xdeepfm", "dcnv2"])
@pytest.mark.parametrize("dense_in", [0, 13])
def test_default_options_build_on_criteo_and_frappe_shapes(name: str, dense_in: int) -> None:
    body = get_baseline(name, dense_in, 10, 12)
    assert body(torch.randn(2, dense_in), torch.randn(2, 10, 12)).shape == (2,)


def _zero(module: torch.nn.Module) -> None:
    for parameter in module.parameters():
        torch.nn.init.zeros_(parameter)


def test_linear_logit_is_a_dot_product_of_embeddings_and_dense() -> None:
    body = get_baseline("linear", 2, 3, 2)
    with torch.no_grad():
        body.linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]))
        body.linear.bias.fill_(0.5)
    sparse = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    dense = torch.tensor([[2.0, -1.0]])
    # 1 + 4 + 5 + 6 + 7*2 - 8 + 0.5
    assert body(dense, sparse).item() == pytest.approx(22.5)


def test_dot_interaction_is_the_strict_upper_triangle_in_row_order() -> None:
    fields = torch.randn(2, 4, 3)
    pairs = DotInteraction(4)(fields)
    expected = torch.stack([(fields[:, i] * fields[:, j]).sum(-1)
                            for i, j in itertools.combinations(range(4), 2)], dim=1)
    torch.testing.assert_close(pairs, expected)


def test_dlrm_top_sees_bottom_output_and_pairwise_dots() -> None:
    body = get_baseline("dlrm", 2, 2, 2, bottom_layer_sizes=(), top_layer_sizes=())
    with torch.no_grad():
        linear = body.bottom.layers[0]._linear
        linear.weight.copy_(torch.eye(2))  # bottom = relu(dense)
        linear.bias.zero_()
        # top input: [bottom (2); dots (b,e1), (b,e2), (e1,e2)]
        body.logit.weight.copy_(torch.tensor([[1.0, 10.0, 100.0, 1000.0, 10000.0]]))
        body.logit.bias.zero_()
    dense = torch.tensor([[2.0, -3.0]])  # bottom = [2, 0]
    sparse = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    # 2*1 + 0*10 + (b.e1=2)*100 + (b.e2=6)*1000 + (e1.e2=11)*10000
    assert body(dense, sparse).item() == pytest.approx(2 + 200 + 6000 + 110000)


def test_dlrm_without_dense_features_uses_embeddings_and_dots() -> None:
    body = get_baseline("dlrm", 0, 3, 2, top_layer_sizes=())
    assert body.bottom is None
    assert body.logit.in_features == 3 * 2 + 3
    cat = get_baseline("dlrm", 0, 3, 2, top_layer_sizes=(), interaction="cat")
    assert cat.logit.in_features == 6


def test_deepfm_second_order_term_is_the_sum_of_pairwise_dot_products() -> None:
    body = get_baseline("deepfm", 0, 3, 4, layer_sizes=(5,), dropout=0.0)
    _zero(body.linear)
    _zero(body.dnn_logit)
    sparse = torch.randn(5, 3, 4)
    expected = sum((sparse[:, i] * sparse[:, j]).sum(-1)
                   for i, j in itertools.combinations(range(3), 2))
    torch.testing.assert_close(body(torch.empty(5, 0), sparse), expected)


def test_deepfm_first_order_term_is_linear_in_embeddings_and_dense() -> None:
    body = get_baseline("deepfm", 1, 2, 2, layer_sizes=(3,))
    _zero(body.dnn_logit)
    _zero(body.dense_field)  # the dense field is a zero vector: no FM contribution
    with torch.no_grad():
        body.linear.weight.copy_(torch.tensor([[1.0, -1.0, 2.0, 0.0, 3.0]]))
        body.linear.bias.fill_(1.0)
    sparse = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    fm = 1 * 3 + 2 * 4
    assert body(torch.tensor([[2.0]]), sparse).item() == pytest.approx(1 - 2 + 6 + 6 + 1 + fm)


def test_cin_first_layer_sums_weighted_hadamard_products_of_field_pairs() -> None:
    cin = CompressedInteractionNetwork(3, (2,))
    fields = torch.randn(4, 3, 5)
    weight = cin.convs[0].weight.detach()[:, :, 0].view(2, 3, 3)  # [h, i, j]
    bias = cin.convs[0].bias.detach()
    expected = torch.zeros(4, 2)
    for h, i, j in itertools.product(range(2), range(3), range(3)):
        expected[:, h] += weight[h, i, j] * (fields[:, i] * fields[:, j]).sum(-1)
    expected += bias * 5  # the bias is added at each of the 5 positions, then sum-pooled
    torch.testing.assert_close(cin(fields), expected, rtol=1e-5, atol=1e-5)


def test_cin_second_layer_crosses_the_first_with_the_input_fields() -> None:
    cin = CompressedInteractionNetwork(2, (2, 1))
    fields = torch.randn(3, 2, 4)
    w1 = cin.convs[0].weight.detach()[:, :, 0].view(2, 2, 2)
    w2 = cin.convs[1].weight.detach()[:, :, 0].view(1, 2, 2)
    b1, b2 = cin.convs[0].bias.detach(), cin.convs[1].bias.detach()
    first = torch.einsum("hij,bid,bjd->bhd", w1, fields, fields) + b1[None, :, None]
    second = torch.einsum("hij,bid,bjd->bhd", w2, first, fields) + b2[None, :, None]
    expected = torch.cat([first.sum(-1), second.sum(-1)], dim=1)
    torch.testing.assert_close(cin(fields), expected, rtol=1e-5, atol=1e-5)


def test_xdeepfm_logit_is_linear_plus_cin_plus_dnn() -> None:
    body = get_baseline("xdeepfm", 0, 3, 4, cin_layer_sizes=(2,), layer_sizes=(5,))
    dense, sparse = torch.empty(2, 0), torch.randn(2, 3, 4)
    parts = (body.linear(sparse.flatten(1)) + body.cin_logit(body.cin(sparse))
             + body.dnn_logit(body.dnn(sparse.flatten(1))))
    torch.testing.assert_close(body(dense, sparse), parts.squeeze(1))


@pytest.mark.parametrize("low_rank", [0, 2])
def test_dcnv2_cross_layer_is_x0_times_wx_plus_b_plus_x(low_rank: int) -> None:
    body = get_baseline("dcnv2", 1, 2, 2, num_cross_layers=1, low_rank=low_rank,
                        structure="stacked", layer_sizes=())
    with torch.no_grad():
        body.logit.weight.fill_(1.0)
        body.logit.bias.zero_()
    weight = torch.tensor([[0.5, -1.0, 0.0, 2.0, 1.0], [1.0, 0.0, 0.0, 0.0, -2.0],
                           [0.0, 0.0, 1.0, 0.0, 0.0], [2.0, 1.0, 0.0, -1.0, 0.0],
                           [0.0, 3.0, 0.0, 0.0, 1.0]])
    bias = torch.tensor([0.1, -0.2, 0.3, 0.0, 0.5])
    with torch.no_grad():
        if low_rank:
            u, v = body.cross.W_kernels[0], body.cross.V_kernels[0]  # W = U V, rank 2
            weight = u @ v
            body.cross.bias[0].copy_(bias)
        else:
            body.cross.kernels[0].copy_(weight)
            body.cross.bias[0].copy_(bias.unsqueeze(1))
    sparse = torch.tensor([[[1.0, 2.0], [-1.0, 0.5]]])
    dense = torch.tensor([[3.0]])
    x0 = torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0])
    expected = (x0 * (weight.detach() @ x0 + bias) + x0).sum()
    assert body(dense, sparse).item() == pytest.approx(expected.item(), rel=1e-5)


def test_dcnv2_parallel_head_sees_cross_and_dnn_outputs() -> None:
    body = get_baseline("dcnv2", 0, 2, 3, layer_sizes=(7,))
    assert body.logit.in_features == 6 + 7
    stacked = get_baseline("dcnv2", 0, 2, 3, layer_sizes=(7,), structure="stacked")
    assert stacked.logit.in_features == 7


def test_self_attention_matches_a_manual_per_head_computation() -> None:
    layer = MultiHeadSelfAttention(3, attention_dim=2, num_heads=2, residual=True)
    fields = torch.randn(2, 4, 3)
    wq, wk, wv, wr = (m.weight.detach() for m in
                      (layer.query, layer.key, layer.value, layer.residual))
    heads = []
    for head in range(2):
        rows = slice(2 * head, 2 * head + 2)
        q, k, v = fields @ wq[rows].T, fields @ wk[rows].T, fields @ wv[rows].T
        attention = torch.softmax(q @ k.transpose(1, 2), dim=-1)  # no scaling by default
        heads.append(attention @ v)
    expected = torch.relu(torch.cat(heads, dim=-1) + fields @ wr.T)
    torch.testing.assert_close(layer(fields), expected, rtol=1e-5, atol=1e-6)


def test_self_attention_scale_divides_scores_by_sqrt_head_width() -> None:
    layer = MultiHeadSelfAttention(2, attention_dim=4, num_heads=1, residual=False, scale=True)
    fields = torch.randn(1, 3, 2)
    q, k, v = (fields @ m.weight.detach().T for m in (layer.query, layer.key, layer.value))
    expected = torch.relu(torch.softmax(q @ k.transpose(1, 2) / 2.0, dim=-1) @ v)
    torch.testing.assert_close(layer(fields), expected, rtol=1e-5, atol=1e-6)


def test_autoint_plus_logit_is_attention_plus_dnn() -> None:
    body = get_baseline("autoint", 0, 3, 4, num_layers=1, attention_dim=2, layer_sizes=(5,))
    sparse = torch.randn(2, 3, 4)
    attention = body.attention_logit(body.attention(sparse).flatten(1))
    dnn = body.dnn_logit(body.dnn(sparse.flatten(1)))
    torch.testing.assert_close(body(torch.empty(2, 0), sparse), (attention + dnn).squeeze(1))
    plain = get_baseline("autoint", 0, 3, 4, layer_sizes=())
    assert plain.dnn is None
