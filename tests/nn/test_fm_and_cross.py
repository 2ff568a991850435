"""The FM, Cross and Flat-FC operators: their formulas on hand-computed tensors, and exact
sharing (the supernet on a path of a plus space equals the materialized subnet, forward and
gradients)."""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import combinations

import pytest
import torch

from nasrec_torchrec.nn.elastic import ElasticLinear
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.nn.operators import (Cross, FactorizationMachine, FlatFC, OperatorInputs,
                                          OperatorPlan)
from nasrec_torchrec.space import Architecture, get_space, sample_any_op_any_conn
from test_networks import assert_path_equals_subnet

pytestmark = pytest.mark.usefixtures("one_thread")


def _set(layer: ElasticLinear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def test_fm_projects_half_the_square_of_the_sum_minus_the_sum_of_squares() -> None:
    op = FactorizationMachine(embedding_dim=2, out_max=3, layer_norm=False)
    _set(op.linear, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, 1.0])
    rows = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])
    # v = ½ ((1+3)² - (1+9), (2-1)² - (4+1)) = (3, -2); W v + b
    assert op(OperatorInputs(OperatorPlan(width=3), sparse=rows)).tolist() == [[3.0, -2.0, 2.0]]
    # width 2: the first two rows of W
    assert op(OperatorInputs(OperatorPlan(width=2), sparse=rows)).tolist() == [[3.0, -2.0]]


def test_fm_summed_over_the_embedding_is_the_sum_of_pairwise_inner_products() -> None:
    torch.manual_seed(0)
    op = FactorizationMachine(embedding_dim=4, out_max=1, layer_norm=False)
    _set(op.linear, [[1.0] * 4], [0.0])
    rows = torch.randn(5, 6, 4)
    pairs = sum((rows[:, i] * rows[:, j]).sum(dim=1) for i, j in combinations(range(6), 2))
    torch.testing.assert_close(op(OperatorInputs(OperatorPlan(width=1), sparse=rows))[:, 0],
                               pairs)


def test_cross_is_x0_times_linear_of_x0_plus_x0() -> None:
    op = Cross(in_max=2, out_max=2, layer_norm=False)
    _set(op.project, [[1.0, 0.0], [0.0, 1.0]], [0.0, 1.0])
    _set(op.cross, [[1.0, 1.0], [0.0, 2.0]], [0.0, -1.0])
    x = torch.tensor([[1.0, 2.0]])
    # x0 = (1, 3); W x0 + b = (4, 5); x0 * (W x0 + b) + x0 = (5, 18)
    plan = OperatorPlan(width=2, concat=((0, 2),))
    assert op(OperatorInputs(plan, concat=x)).tolist() == [[5.0, 18.0]]
    # width 1: x0 = 1, W's top-left entry: 1 * (1 * 1 + 0) + 1
    plan = OperatorPlan(width=1, concat=((0, 2),))
    assert op(OperatorInputs(plan, concat=x)).tolist() == [[2.0]]


def test_cross_with_layer_norm_normalises_the_d_active_units() -> None:
    torch.manual_seed(0)
    op = Cross(in_max=5, out_max=8, layer_norm=True)
    raw = Cross(in_max=5, out_max=8, layer_norm=False)
    raw.load_state_dict({k: v for k, v in op.state_dict().items() if not k.startswith("norm")})
    x = torch.randn(4, 5)
    inputs = OperatorInputs(OperatorPlan(width=6, concat=((0, 5),)), concat=x)
    torch.testing.assert_close(op(inputs), torch.nn.functional.layer_norm(raw(inputs), (6,)))


def test_flat_fc_reads_the_chosen_rows_flattened_row_after_row() -> None:
    op = FlatFC(sparse_in_max=3, out_max=2, embedding_dim=2, layer_norm=False)
    # columns: row 0 -> (0, 1), row 1 -> (2, 3), row 2 -> (4, 5)
    _set(op.linear, [[1.0, 2.0, 0.0, 0.0, 3.0, 4.0], [0.0, 0.0, 1.0, 0.0, -1.0, 0.0]],
         [0.5, -9.0])
    rows = torch.tensor([[[1.0, 1.0], [2.0, 3.0]]])  # the sparse concat holds rows 0 and 2
    plan = OperatorPlan(width=2, sparse=((0, 1), (2, 1)))
    # W's columns (0, 1, 4, 5): (1·1 + 2·1 + 3·2 + 4·3 + 0.5, relu(-1·2 - 9)) = (21.5, 0)
    assert op(OperatorInputs(plan, sparse=rows)).tolist() == [[21.5, 0.0]]
    state = op.sliced_state(OperatorPlan(width=1, sparse=((0, 1), (2, 1))))
    assert state["linear.weight"].tolist() == [[1.0, 2.0, 3.0, 4.0]]


def _only(architecture: Architecture, dense_ops: tuple[str, ...]) -> Architecture:
    return replace(architecture, blocks=tuple(replace(block, dense_ops=dense_ops)
                                              for block in architecture.blocks))


@pytest.mark.parametrize("space_name", ["nasrec-small-plus", "nasrec-full-plus"])
@pytest.mark.parametrize("dense_in_features", [5, 0])  # 0: no dense features (Frappe, Avazu)
def test_supernet_path_with_fm_cross_and_flat_fc_equals_the_materialized_subnet(
        space_name: str, dense_in_features: int) -> None:
    torch.manual_seed(0)
    space = get_space(space_name)
    supernet = Supernet(space, dense_in_features, num_sparse_features=6, embedding_dim=4)
    dense, sparse = torch.randn(3, dense_in_features), torch.randn(3, 6, 4)
    rng = random.Random(3)
    for trial in range(12):
        drawn = sample_any_op_any_conn(space, rng)
        architecture = _only(drawn, (("fm",), ("cross",), ("flat_fc",),
                                     ("fm", "cross", "flat_fc"))[trial % 4])
        if trial >= 8:
            architecture = drawn  # FM and Cross among the others
        supernet.zero_grad(set_to_none=True)
        net = NASRecNet.from_supernet(supernet, architecture)
        assert_path_equals_subnet(supernet, net, architecture, dense, sparse)
        last = space.num_blocks
        for op in architecture.block(last).dense_ops:
            assert any(name.startswith(f"blocks.{last}.dense_ops.{op}.")
                       for name, _ in net.named_parameters()), op


def test_fm_operator_and_fm_flag_live_side_by_side() -> None:
    space = replace(get_space("nasrec-small-plus"), name="plus-with-flag", num_blocks=3,
                    project_concat_rows=2, fm_searchable=True)
    torch.manual_seed(0)
    supernet = Supernet(space, 4, num_sparse_features=5, embedding_dim=4)
    dense, sparse = torch.randn(2, 4), torch.randn(2, 5, 4)
    architecture = _only(sample_any_op_any_conn(space, random.Random(0)), ("fm", "cross"))
    architecture = replace(architecture, blocks=tuple(replace(block, fm=True)
                                                      for block in architecture.blocks))
    net = NASRecNet.from_supernet(supernet, architecture)
    keys = set(net.state_dict())
    assert "blocks.3.fm.linear.weight" in keys and "blocks.3.dense_ops.fm.linear.weight" in keys
    torch.testing.assert_close(supernet(dense, sparse, architecture), net(dense, sparse),
                               atol=1e-5, rtol=0)


def test_a_plus_space_model_exports_with_torch_export() -> None:
    architecture = _only(sample_any_op_any_conn(get_space("nasrec-small-plus"),
                                                random.Random(5)), ("fm", "cross", "flat_fc"))
    net = NASRecNet(architecture, 4, 3, embedding_dim=4).eval()
    dense, sparse = torch.randn(2, 4), torch.randn(2, 3, 4)
    exported = torch.export.export(net, (dense, sparse))
    torch.testing.assert_close(exported.module()(dense, sparse), net(dense, sparse))
