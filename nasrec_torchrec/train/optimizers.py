"""Optimizers of a sharded model and their learning-rate schedule.

Embedding tables: exact Adagrad fused into the FBGEMM backward (`dmp.fused_optimizer`, set up
by `nasrec_torchrec.embeddings.shard_model`). Dense parameters: `torch.optim.Adagrad` in a
`KeyedOptimizerWrapper`. Both in one TorchRec `CombinedOptimizer`.

The schedule (cosine over the run's steps, optional linear warm-up) sets the `lr` of every
param group of the combined optimizer, the fused ones included: TorchRec's fused optimizer
pushes `param_groups[0]["lr"]` into the FBGEMM kernel on `zero_grad()` and `step()`, so the
rows updated in a step's backward use the rate set before that step's `zero_grad()` (which
TorchRec's train pipelines call first thing in `progress()`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import nn
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizer, KeyedOptimizerWrapper
from torchrec.optim.optimizers import in_backward_optimizer_filter

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import SliceGradients
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad

DEFAULT_DENSE_LR = 0.04
DEFAULT_EPS = 1e-8


def dense_optimizer(model: nn.Module, learning_rate: float = DEFAULT_DENSE_LR,
                    eps: float = DEFAULT_EPS,
                    slice_gradients: Optional[SliceGradients] = None) -> KeyedOptimizerWrapper:
    """Adagrad over every parameter of `model` not updated in the backward (the fused tables).

    With `slice_gradients` (a supernet recording the gradients of the slices it used), a
    `SlicedAdagrad` that all-reduces and updates those slices only.
    """
    params = dict(in_backward_optimizer_filter(model.named_parameters()))
    if slice_gradients is not None:
        return KeyedOptimizerWrapper(params, lambda group: SlicedAdagrad(
            group, slice_gradients, lr=learning_rate, eps=eps))
    return KeyedOptimizerWrapper(
        params, lambda group: torch.optim.Adagrad(group, lr=learning_rate, eps=eps),
    )


def build_optimizer(dmp: nn.Module, learning_rate: float = DEFAULT_DENSE_LR,
                    eps: float = DEFAULT_EPS,
                    slice_gradients: Optional[SliceGradients] = None) -> CombinedOptimizer:
    """`CombinedOptimizer` of the model's fused embedding optimizer ("embeddings") and a dense
    Adagrad ("dense"); `dmp` is a `DistributedModelParallel`."""
    fused: KeyedOptimizer = dmp.fused_optimizer  # type: ignore[assignment]
    return CombinedOptimizer([
        ("embeddings", fused),
        ("dense", dense_optimizer(dmp, learning_rate, eps, slice_gradients)),
    ])


def cosine_factor(step: int, total_steps: int, warmup_fraction: float = 0.0,
                  final_factor: float = 0.0) -> float:
    """The learning-rate multiplier of step `step` (0-based) of `total_steps`.

    Linear warm-up from 1/warmup_steps to 1 over the first `warmup_fraction` of the steps, then
    a half cosine from 1 that would reach `final_factor` one step after the last (so no step
    trains at the final rate); steps past the end get `final_factor`. Plain Python, no torch.
    """
    if total_steps <= 0:
        raise NASRecError(f"total_steps must be positive, got {total_steps}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise NASRecError(f"lr warm-up fraction must be in [0, 1), got {warmup_fraction}")
    if step >= total_steps:
        return final_factor
    step = max(step, 0)
    warmup_steps = int(round(warmup_fraction * total_steps))
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CosineSchedule:
    """Cosine learning-rate schedule (optional linear warm-up) over every param group.

    Each group keeps its own base rate (its `lr` when the schedule is built), scaled by
    `cosine_factor(step, ...)`. Call `apply()` once before the first step (done by the
    constructor) and `step()` after each optimizer step. With `constant=True` the rate stays
    at the base.

    Args:
        optimizer: e.g. the `CombinedOptimizer` of `build_optimizer`.
        total_steps: steps of the run.
        warmup_fraction: fraction of the steps with linear warm-up.
        final_factor: the rate after the last step as a fraction of the base.
        constant: keep the base rate (no schedule).

    Example::

        optimizer = build_optimizer(dmp, learning_rate=0.04)
        schedule = CosineSchedule(optimizer, total_steps=len(loader))
        for batch in loader:
            pipeline.progress(...); schedule.step()
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int,
                 warmup_fraction: float = 0.0, final_factor: float = 0.0,
                 constant: bool = False) -> None:
        self.optimizer = optimizer
        self.total_steps: int = total_steps
        self.warmup_fraction: float = warmup_fraction
        self.final_factor: float = final_factor
        self.constant: bool = constant
        self.base_lrs: list[float] = [float(group["lr"]) for group in optimizer.param_groups]
        self.last_step: int = 0
        cosine_factor(0, total_steps, warmup_fraction, final_factor)  # validates
        self.apply()

    def factor(self) -> float:
        """The current multiplier of the base rates."""
        if self.constant:
            return 1.0
        return cosine_factor(self.last_step, self.total_steps, self.warmup_fraction,
                             self.final_factor)

    def apply(self) -> None:
        """Set every group's `lr` for the current step."""
        factor = self.factor()
        groups = list(self.optimizer.param_groups)
        if len(groups) != len(self.base_lrs):
            raise NASRecError("the optimizer's param groups changed under its LR schedule")
        for group, base in zip(groups, self.base_lrs):
            group["lr"] = base * factor  # type: ignore[index]

    def step(self) -> None:
        """Advance one step and set the rates for it."""
        self.last_step += 1
        self.apply()

    def get_last_lr(self) -> list[float]:
        """The rate of every group at the current step."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs),
                "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction,
                "final_factor": self.final_factor, "constant": self.constant}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the position (and base rates) and re-apply the rates."""
        self.last_step = int(state["last_step"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self.apply()
