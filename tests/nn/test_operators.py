"""The paper's operator semantics, pinned against small hand-computed tensors."""

from __future__ import annotations

import math

import torch

from nasrec_torchrec.nn.elastic import DenseLayout, ElasticLinear, SparseLayout
from nasrec_torchrec.nn.operators import (FC, FM, DotProduct, EmbedFC, Gating, OperatorInputs,
                                          OperatorPlan, ProjectConcat, SelfAttention, Sum,
                                          dot_product_rows, fm_interaction, pairwise_products,
                                          self_attention)


def _set(layer: ElasticLinear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def _pair(left: torch.Tensor, right: torch.Tensor, width: int) -> OperatorInputs:
    """X1, X2 read whole, at output width `width`."""
    plan = OperatorPlan(width=width, left=((0, left.shape[1]),), right=((0, right.shape[1]),),
                        left_width=left.shape[1], right_width=right.shape[1])
    return OperatorInputs(plan, left=left, right=right)


def _rows(sparse: torch.Tensor, rows: int) -> OperatorInputs:
    """The sparse concat read whole, at `rows` output rows."""
    return OperatorInputs(OperatorPlan(rows=rows, sparse=((0, sparse.shape[1]),)), sparse=sparse)


def test_dot_product_rows_balance_the_operator() -> None:
    assert [dot_product_rows(d) for d in (16, 32, 64, 128, 256, 512, 768, 1024)] == [
        6, 8, 12, 16, 23, 32, 40, 46]


def test_pairwise_products_are_the_strict_upper_triangle_ordered_by_column() -> None:
    rows = torch.tensor([[[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]])  # r0, r1, r2
    # Pairs (0,1), (0,2), (1,2): 2, 0, 3
    assert pairwise_products(rows).tolist() == [[2.0, 0.0, 3.0]]
    # The products among the first two rows are a prefix of those among three.
    assert pairwise_products(rows[:, :2]).tolist() == [[2.0]]


def test_self_attention_follows_the_paper_formula() -> None:
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    s = math.sqrt(2)
    scores = torch.tensor([[1 / s, 0.0], [0.0, 4 / s]])
    expected = torch.softmax(scores, dim=-1) @ x[0]
    torch.testing.assert_close(self_attention(x)[0], expected)


def test_fm_interaction_is_square_of_sum_minus_sum_of_squares() -> None:
    rows = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])
    # (1+3)^2 - (1+9) = 6 ; (2-1)^2 - (4+1) = -4
    assert fm_interaction(rows).tolist() == [[6.0, -4.0]]


def test_elastic_linear_uses_first_rows_and_chosen_column_ranges() -> None:
    layer = ElasticLinear(in_max=4, out_max=3)
    _set(layer, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], [0.5, 1.5, 2.5])
    x = torch.tensor([[1.0, 10.0]])  # columns 1 and 3 of the full input
    y = layer(x, out=2, ranges=((1, 1), (3, 1)))
    assert y.tolist() == [[1 * 2 + 10 * 4 + 0.5, 1 * 6 + 10 * 8 + 1.5]]


def test_fc_is_relu_of_linear() -> None:
    op = FC(in_max=2, out_max=2, layer_norm=False)
    _set(op.linear, [[1, -1], [-2, 1]], [0, 0])
    inputs = OperatorInputs(OperatorPlan(width=2, concat=((0, 2),)),
                            concat=torch.tensor([[3.0, 1.0]]))
    assert op(inputs).tolist() == [[2.0, 0.0]]


def test_gating_is_sigmoid_gate_times_projected_right_input() -> None:
    op = Gating(left_in_max=1, right_in_max=3, out_max=2, layer_norm=False)
    _set(op.gate, [[1.0], [0.0]], [0.0, 0.0])
    _set(op.project_right, [[1, 0, 0], [0, 1, 1]], [0.0, 0.0])
    left, right = torch.tensor([[2.0]]), torch.tensor([[1.0, 2.0, 3.0]])
    y = op(_pair(left, right, width=2))
    sig = 1 / (1 + math.exp(-2.0))
    torch.testing.assert_close(y, torch.tensor([[sig * 1.0, 0.5 * 5.0]]))
    # Same width: the right input is used as it is (no projection).
    same = op(_pair(left, torch.tensor([[4.0, 6.0]]), width=2))
    torch.testing.assert_close(same, torch.tensor([[sig * 4.0, 0.5 * 6.0]]))


def test_sum_adds_inputs_projecting_only_mismatched_widths() -> None:
    op = Sum(left_in_max=2, right_in_max=1, out_max=2, layer_norm=False)
    _set(op.project_right, [[2.0], [3.0]], [1.0, 1.0])
    y = op(_pair(torch.tensor([[1.0, 2.0]]), torch.tensor([[10.0]]), width=2))
    assert y.tolist() == [[1 + 21.0, 2 + 31.0]]


def test_embed_fc_is_an_fc_along_rows() -> None:
    op = EmbedFC(sparse_in_max=2, rows_max=1, embedding_dim=2, layer_norm=False)
    _set(op.linear, [[2.0, -1.0]], [0.5])
    x = torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])  # [B=1, 2 rows, E=2]
    assert op(_rows(x, rows=1)).tolist() == [[[2 - 3 + 0.5, 4 - 5 + 0.5]]]


def test_self_attention_operator_projects_rows_first() -> None:
    op = SelfAttention(sparse_in_max=3, rows_max=2, embedding_dim=2, layer_norm=False)
    _set(op.linear, [[1, 0, 0], [0, 0, 1]], [0.0, 0.0])
    x = torch.tensor([[[1.0, 0.0], [7.0, 7.0], [0.0, 2.0]]])
    torch.testing.assert_close(op(_rows(x, rows=2)), self_attention(x[:, [0, 2]]))


def test_dot_product_operator_projects_then_interacts() -> None:
    op = DotProduct(dense_in_max=1, sparse_in_max=2, out_max=2, embedding_dim=2,
                    layer_norm=False)
    rows = dot_product_rows(2)  # 2 projected sparse rows -> 3 rows -> 3 products
    assert rows == 2
    _set(op.dense_projection, [[1.0], [0.0]], [0.0, 0.0])        # dense row = (x, 0)
    _set(op.row_projection, [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])  # identity
    op.output.weight.data.zero_()
    op.output.bias.data.zero_()
    op.output.weight.data[0, :3] = torch.tensor([1.0, 10.0, 100.0])
    dense = torch.tensor([[2.0]])
    sparse = torch.tensor([[[1.0, 1.0], [0.0, 3.0]]])
    # rows: z0 = (2, 0), z1 = (1, 1), z2 = (0, 3); products (0,1)=2, (0,2)=0, (1,2)=3
    plan = OperatorPlan(width=2, concat=((0, 1),), sparse=((0, 2),))
    y = op(OperatorInputs(plan, concat=dense, sparse=sparse))
    assert y.tolist() == [[2 + 0 + 300.0, 0.0]]


def test_project_concat_and_fm_shapes() -> None:
    pc = ProjectConcat(dense_max=8, rows=3, embedding_dim=4)
    assert pc(torch.randn(5, 6)).shape == (5, 3, 4)
    fm = FM(embedding_dim=4, out_max=8, layer_norm=False)
    assert fm(torch.randn(5, 7, 4), width=6).shape == (5, 6)


def test_fm_with_layer_norm_is_normalised_whatever_the_row_count() -> None:
    torch.manual_seed(0)
    fm = FM(embedding_dim=16, out_max=32, layer_norm=True)
    raw = FM(embedding_dim=16, out_max=32, layer_norm=False)
    raw.load_state_dict({k: v for k, v in fm.state_dict().items() if k.startswith("linear")})
    rows = torch.randn(64, 40, 16)  # 40 rows: the FM term is ~40x the rows' scale
    out = fm(rows, width=24)
    # LN over the 24 used units of the same projection
    expected = torch.nn.functional.layer_norm(raw(rows, width=24), (24,))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert raw(rows, width=24).abs().mean() > 10 * out.abs().mean()


def test_layouts_give_slot_ranges_of_chosen_sources() -> None:
    dense = DenseLayout.of({0: 13, 1: 512, 2: 512})
    assert dense.ranges({0: 13, 2: 64}) == ((0, 13), (525, 64))
    sparse = SparseLayout.of({0: (26, 0), 1: (64, 8), 2: (64, 8)})
    # Source 1 with 16 branch rows and its 8 Project-Concat rows, source 2 without them.
    assert sparse.ranges({1: (16, 8), 2: (32, 0)}) == ((26, 16), (26 + 64, 8), (98, 32))
