"""The dense operators on the dense concat or on X1 / X2: FC, Gating, Sum (`[B, d]` out)."""

from __future__ import annotations

from typing import Optional

import torch

from nasrec_torchrec.nn.elastic import ElasticLinear, Ranges
from nasrec_torchrec.nn.operators.base import (Operator, OperatorInputs, OperatorPlan,
                                               OperatorShape, State, dense_norm, norm_state,
                                               prefixed,
                                               register_operator)


@register_operator("fc")
class FC(Operator):
    """Dense FC: `relu(LN(W x + b))` on the dense concat, `[B, in] -> [B, d]`.

    Example::

        op = FC(in_max=80, out_max=64, layer_norm=True)
        y = op(OperatorInputs(OperatorPlan(width=32, concat=((0, 80),)), concat=x))  # [B, 32]
    """

    def __init__(self, in_max: int, out_max: int, layer_norm: bool,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.linear = ElasticLinear(in_max, out_max)
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    @classmethod
    def build(cls, shape: OperatorShape) -> "FC":
        return cls(shape.concat_width, shape.dense_max, shape.layer_norm, shape.batch_norm)

    def features(self, inputs: OperatorInputs) -> torch.Tensor:
        """What W multiplies: the dense concat `[B, in]`."""
        return inputs.concat

    def columns(self, plan: OperatorPlan) -> Ranges:
        """W's columns in use: those of the chosen sources of the dense concat."""
        return plan.concat

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        y = self.linear(self.features(inputs), inputs.plan.width, self.columns(inputs.plan))
        if self.norm is not None:
            y = self.norm(y)
        return torch.relu(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        return {**prefixed("linear", self.linear.sliced_state(plan.width, self.columns(plan))),
                **norm_state(self.norm, plan.width)}


def _project(project: Optional[ElasticLinear], x: torch.Tensor, width: int,
             ranges: Ranges) -> torch.Tensor:
    """An FC to width d when the input's width differs from d, else the identity."""
    if x.shape[1] == width:
        return x
    assert project is not None, "a projection is needed but was not built"
    return project(x, width, ranges)


def _projection_state(name: str, project: Optional[ElasticLinear], in_width: int, width: int,
                      ranges: Ranges) -> State:
    if in_width == width or project is None:
        return {}
    return prefixed(name, project.sliced_state(width, ranges))


@register_operator("gating")
class Gating(Operator):
    """Sigmoid Gating: `LN(sigmoid(W_g x1 + b_g) * p(x2))`, p an FC when widths differ."""

    def __init__(self, left_in_max: int, right_in_max: int, out_max: int, layer_norm: bool,
                 project_right: bool = True, batch_norm: bool = False) -> None:
        super().__init__()
        self.gate = ElasticLinear(left_in_max, out_max)
        self.project_right = ElasticLinear(right_in_max, out_max) if project_right else None
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    @classmethod
    def build(cls, shape: OperatorShape) -> "Gating":
        return cls(shape.left_width, shape.right_width, shape.dense_max, shape.layer_norm,
                   project_right=shape.project_right, batch_norm=shape.batch_norm)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        plan = inputs.plan
        gate = torch.sigmoid(self.gate(inputs.left, plan.width, plan.left))
        y = gate * _project(self.project_right, inputs.right, plan.width, plan.right)
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        return {**prefixed("gate", self.gate.sliced_state(plan.width, plan.left)),
                **_projection_state("project_right", self.project_right, plan.right_width,
                                    plan.width, plan.right),
                **norm_state(self.norm, plan.width)}


@register_operator("sum")
class Sum(Operator):
    """Sum: `LN(p1(x1) + p2(x2))`, each p an FC to width d when the width differs."""

    def __init__(self, left_in_max: int, right_in_max: int, out_max: int, layer_norm: bool,
                 project_left: bool = True, project_right: bool = True,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.project_left = ElasticLinear(left_in_max, out_max) if project_left else None
        self.project_right = ElasticLinear(right_in_max, out_max) if project_right else None
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    @classmethod
    def build(cls, shape: OperatorShape) -> "Sum":
        return cls(shape.left_width, shape.right_width, shape.dense_max, shape.layer_norm,
                   project_left=shape.project_left, project_right=shape.project_right,
                   batch_norm=shape.batch_norm)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        plan = inputs.plan
        y = (_project(self.project_left, inputs.left, plan.width, plan.left)
             + _project(self.project_right, inputs.right, plan.width, plan.right))
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        return {**_projection_state("project_left", self.project_left, plan.left_width,
                                    plan.width, plan.left),
                **_projection_state("project_right", self.project_right, plan.right_width,
                                    plan.width, plan.right),
                **norm_state(self.norm, plan.width)}
