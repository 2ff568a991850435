"""The Cross operator: one DCNv2 cross layer over the block's dense concat projected to d."""

from __future__ import annotations

import torch

from nasrec_torchrec.nn.elastic import ElasticLinear, full_range
from nasrec_torchrec.nn.operators.base import (Operator, OperatorInputs, OperatorPlan,
                                               OperatorShape, State, dense_norm, norm_state,
                                               prefixed,
                                               register_operator)


@register_operator("cross")
class Cross(Operator):
    """Cross: `LN(x0 * (W x0 + b) + x0)` with `x0 = P x + c`, x the dense concat,
    `[B, Din] -> [B, d]`.

    P is an FC to width d (its first d rows and the columns of the chosen sources), W the
    `[d, d]` top-left block of a `[d_max, d_max]` weight: both share by slicing.

    Example::

        op = Cross(in_max=80, out_max=64, layer_norm=True)
        y = op(OperatorInputs(OperatorPlan(width=32, concat=((0, 80),)), concat=x))  # [B, 32]
    """

    def __init__(self, in_max: int, out_max: int, layer_norm: bool,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.project = ElasticLinear(in_max, out_max)
        self.cross = ElasticLinear(out_max, out_max)
        self.norm = dense_norm(out_max, layer_norm, batch_norm)

    @classmethod
    def build(cls, shape: OperatorShape) -> "Cross":
        return cls(shape.concat_width, shape.dense_max, shape.layer_norm, shape.batch_norm)

    def forward(self, inputs: OperatorInputs) -> torch.Tensor:
        width = inputs.plan.width
        x0 = self.project(inputs.concat, width, inputs.plan.concat)
        y = x0 * self.cross(x0, width, full_range(width)) + x0
        return y if self.norm is None else self.norm(y)

    def sliced_state(self, plan: OperatorPlan) -> State:
        width = plan.width
        return {**prefixed("project", self.project.sliced_state(width, plan.concat)),
                **prefixed("cross", self.cross.sliced_state(width, full_range(width))),
                **norm_state(self.norm, width)}
