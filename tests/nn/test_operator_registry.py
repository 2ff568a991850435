"""The operator registry: one nn class per table entry, one call signature for all of them,
unknown names refused; a new operator needs only its table entry and its class."""

from __future__ import annotations

import random

import pytest
import torch

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import ElasticLinear
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.nn.operators import (OPERATOR_CLASSES, Operator, OperatorInputs,
                                          OperatorPlan, OperatorShape, State, build_operator,
                                          register_operator)
from nasrec_torchrec.space import (OPERATORS, Architecture, Block, OperatorSpec, SearchSpace,
                                   sample_any_op_any_conn, sample_full, sample_single_op_any_conn)
from nasrec_torchrec.space.operators import DENSE, DENSE_CONCAT, SPARSE, SPARSE_CONCAT

E = 4
LARGEST = OperatorShape(concat_width=10, left_width=6, right_width=7, sparse_rows=9, dense_max=8,
                        rows_max=5, embedding_dim=E, layer_norm=True)
# One path through the largest operator: d = 6, n = 3, and a few slot ranges per input.
PLAN = OperatorPlan(width=6, rows=3, concat=((0, 3), (5, 4)), left=((0, 6),), right=((0, 5),),
                    sparse=((1, 4), (6, 2)), left_width=6, right_width=5)
# The operator built at the exact sizes of that path, and its plan.
EXACT = OperatorShape(concat_width=7, left_width=6, right_width=5, sparse_rows=6, dense_max=6,
                      rows_max=3, embedding_dim=E, layer_norm=True, project_left=False)
EXACT_PLAN = OperatorPlan(width=6, rows=3, concat=((0, 7),), left=((0, 6),), right=((0, 5),),
                          sparse=((0, 6),), left_width=6, right_width=5)


def _inputs(plan: OperatorPlan, batch: int = 3) -> OperatorInputs:
    generator = torch.Generator().manual_seed(0)
    return OperatorInputs(plan, concat=torch.randn(batch, 7, generator=generator),
                          left=torch.randn(batch, 6, generator=generator),
                          right=torch.randn(batch, 5, generator=generator),
                          sparse=torch.randn(batch, 6, E, generator=generator))


def test_every_operator_of_the_table_has_an_nn_class():
    assert set(OPERATOR_CLASSES) == set(OPERATORS)
    for name, cls in OPERATOR_CLASSES.items():
        assert issubclass(cls, Operator), name


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_runs_with_one_signature_and_slices_exactly(name: str):
    branch = OPERATORS[name].branch
    torch.manual_seed(0)
    largest = build_operator(name, branch, LARGEST)
    exact = build_operator(name, branch, EXACT)
    exact.load_state_dict(largest.sliced_state(PLAN))
    y = largest(_inputs(PLAN))
    assert y.shape == ((3, PLAN.width) if branch == DENSE else (3, PLAN.rows, E))
    torch.testing.assert_close(y, exact(_inputs(EXACT_PLAN)), atol=1e-6, rtol=1e-6)


def test_an_unknown_operator_name_is_an_error_naming_it(monkeypatch):
    with pytest.raises(NASRecError, match=r"unknown operator 'conv'"):
        build_operator("conv", DENSE, LARGEST)
    with pytest.raises(NASRecError, match=r"'embed_fc' is a sparse operator, not a dense one"):
        build_operator("embed_fc", DENSE, LARGEST)
    with pytest.raises(NASRecError, match=r"unknown operator 'conv'"):
        register_operator("conv")
    with pytest.raises(NASRecError, match=r"'fc': registered twice"):
        register_operator("fc")(type("FC2", (Operator,), {}))
    monkeypatch.setitem(OPERATORS, "ghost", OperatorSpec("ghost", DENSE, frozenset({DENSE_CONCAT})))
    with pytest.raises(NASRecError, match=r"operator 'ghost' has no nn module"):
        build_operator("ghost", DENSE, LARGEST)


def test_a_model_with_an_unknown_operator_is_refused_by_name():
    block = Block(dense_sources=(0,), sparse_sources=(0,), dense_left=0, dense_right=0,
                  dense_ops=("fc", "conv"), sparse_ops=("embed_fc",), dense_dim=8, sparse_dim=4)
    with pytest.raises(NASRecError, match=r"unknown operator 'conv'"):
        NASRecNet(Architecture(blocks=(block,)), dense_in_features=3, num_sparse_features=2,
                  embedding_dim=E)


class DenseRows(Operator):
    """A sparse operator on the dense concat: `W x + b` as n rows of width E."""

    def __init__(self, in_max: int, rows_max: int, embedding_dim: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.linear = ElasticLinear(in_max, rows_max * embedding_dim)

    @classmethod
    def build(cls, shape: OperatorShape) -> "DenseRows":
        return cls(shape.concat_width, shape.rows_max, shape.embedding_dim)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        plan = inputs.plan
        y = self.linear(inputs.concat, plan.rows * self.embedding_dim, plan.concat)
        return y.view(-1, plan.rows, self.embedding_dim)

    def sliced_state(self, plan: OperatorPlan) -> State:
        state = self.linear.sliced_state(plan.rows * self.embedding_dim, plan.concat)
        return {f"linear.{key}": value for key, value in state.items()}


class RowSum(Operator):
    """A dense operator on the sparse concat only: `W Σ_rows X + b`."""

    def __init__(self, embedding_dim: int, out_max: int) -> None:
        super().__init__()
        self.linear = ElasticLinear(embedding_dim, out_max)

    @classmethod
    def build(cls, shape: OperatorShape) -> "RowSum":
        return cls(shape.embedding_dim, shape.dense_max)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        return self.linear(inputs.sparse.sum(dim=1), inputs.plan.width,
                           ((0, self.linear.in_max),))

    def sliced_state(self, plan: OperatorPlan) -> State:
        state = self.linear.sliced_state(plan.width, ((0, self.linear.in_max),))
        return {f"linear.{key}": value for key, value in state.items()}


@pytest.fixture
def new_operators(monkeypatch):
    """Two operators added the way a new one is: a table entry and a registered class."""
    for spec, cls in ((OperatorSpec("dense_rows", SPARSE, frozenset({DENSE_CONCAT})), DenseRows),
                      (OperatorSpec("row_sum", DENSE, frozenset({SPARSE_CONCAT})), RowSum)):
        monkeypatch.setitem(OPERATORS, spec.name, spec)
        monkeypatch.setitem(OPERATOR_CLASSES, spec.name, cls)


def test_new_operators_share_weights_exactly_in_supernet_and_subnet(new_operators):
    space = SearchSpace(name="extended", num_blocks=3, dense_ops=("fc", "row_sum"),
                        sparse_ops=("embed_fc", "dense_rows"), dense_dims=(4, 8),
                        sparse_dims=(2, 3), project_concat_rows=2, fm_searchable=True)
    torch.manual_seed(0)
    supernet = Supernet(space, dense_in_features=5, num_sparse_features=3, embedding_dim=E)
    dense, sparse = torch.randn(4, 5), torch.randn(4, 3, E)
    rng = random.Random(0)
    used = set()
    for trial in range(30):
        sampler = (sample_single_op_any_conn, sample_any_op_any_conn, sample_full)[trial % 3]
        architecture = sampler(space, rng)
        used.update(op for block in architecture.blocks for op in block.dense_ops + block.sparse_ops)
        net = NASRecNet.from_supernet(supernet, architecture)
        torch.testing.assert_close(supernet(dense, sparse, architecture), net(dense, sparse),
                                   atol=1e-5, rtol=0)
    assert {"dense_rows", "row_sum"} <= used
