"""Learning-rate schedules: one registry of rate multipliers, and the schedule that applies
one to an optimizer's param groups. Pure Python (no torch): the optimizer is duck-typed.

A schedule is a function `factor(step, total_steps, warmup_steps, final_factor) -> float`
giving the multiplier of the base rate at step `step` (0-based). A new schedule is one
function and one entry of `LR_SCHEDULES`; every command's `--lr-schedule` lists it.
`warmup_steps` says how long a run warms up (`--lr-warmup-steps`, or `--lr-warmup` as a
fraction of the run).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional

from nasrec_torchrec.errors import NASRecError

ScheduleFactor = Callable[[int, int, float, float], float]


def warmup_length(total_steps: int, warmup_steps: int,
                  warmup_fraction: Optional[float] = None) -> int:
    """The warm-up steps of a run of `total_steps`: `warmup_fraction` of them when given,
    else `warmup_steps` (a shorter run ends before its rate reaches the base rate)."""
    if warmup_fraction is not None:
        return int(round(warmup_fraction * total_steps))
    return warmup_steps


def _after_warm_up(shape: Callable[[float], float]) -> ScheduleFactor:
    """A factor: linear warm-up from 1/warmup_steps to 1 over the first `warmup_steps` steps
    (all of a shorter run), then `final_factor + (1 - final_factor) * shape(progress)` with
    `progress` from 0 (the first step after the warm-up) towards 1, which it would reach one
    step after the last (so no step trains at the final rate); steps past the end get
    `final_factor`."""
    def factor(step: int, total_steps: int, warmup_steps: int = 0,
               final_factor: float = 0.0) -> float:
        _check(total_steps, warmup_steps)
        if step >= total_steps:
            return final_factor
        step = max(step, 0)
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        return final_factor + (1.0 - final_factor) * shape(progress)
    return factor


def _half_cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _straight_line(progress: float) -> float:
    return 1.0 - progress


cosine_factor = _after_warm_up(_half_cosine)
"""Warm-up, then a half cosine from 1 towards `final_factor`."""
linear_factor = _after_warm_up(_straight_line)
"""Warm-up, then a straight line from 1 towards `final_factor`."""


def constant_factor(step: int, total_steps: int, warmup_steps: int = 0,
                    final_factor: float = 0.0) -> float:
    """The base rate at every step (no warm-up, no decay)."""
    _check(total_steps, warmup_steps)
    return 1.0


def _check(total_steps: int, warmup_steps: int) -> None:
    if total_steps <= 0:
        raise NASRecError(f"total_steps must be positive, got {total_steps}")
    if warmup_steps < 0:
        raise NASRecError(f"lr warm-up steps must be >= 0, got {warmup_steps}")


LR_SCHEDULES: dict[str, ScheduleFactor] = {"cosine": cosine_factor, "constant": constant_factor,
                                           "linear": linear_factor}


def schedule_factor(name: str) -> ScheduleFactor:
    """The multiplier function of the schedule `name`."""
    if name not in LR_SCHEDULES:
        raise NASRecError(f"lr schedule {name!r} is not one of {', '.join(LR_SCHEDULES)}")
    return LR_SCHEDULES[name]


def step_rates(name: str, learning_rate: float, steps: int) -> list[float]:
    """The rate of each of `steps` steps under schedule `name` (no warm-up, towards 0)."""
    factor = schedule_factor(name)
    return [learning_rate * factor(step, steps, 0, 0.0) for step in range(steps)]


class LRSchedule:
    """A registered schedule applied to every param group of an optimizer.

    Each group keeps its own base rate (its `lr` when the schedule is built), scaled by the
    schedule's factor. The constructor sets the rates of step 0; call `step()` after each
    optimizer step.

    Args:
        optimizer: anything with `param_groups` (e.g. the `CombinedOptimizer` of
            `train.optimizers.build_optimizer`).
        total_steps: steps of the run.
        warmup_steps: the first steps, with linear warm-up (`warmup_length`).
        final_factor: the rate after the last step as a fraction of the base.
        schedule: a name of `LR_SCHEDULES`.

    Example::

        schedule = LRSchedule(optimizer, total_steps=len(loader))
        for batch in loader:
            pipeline.progress(...); schedule.step()
    """

    def __init__(self, optimizer: Any, total_steps: int, warmup_steps: int = 0,
                 final_factor: float = 0.0, schedule: str = "cosine") -> None:
        self.optimizer = optimizer
        self.total_steps: int = total_steps
        self.warmup_steps: int = warmup_steps
        self.final_factor: float = final_factor
        self.schedule: str = schedule
        self._factor: ScheduleFactor = schedule_factor(schedule)
        self.base_lrs: list[float] = [float(group["lr"]) for group in optimizer.param_groups]
        self.last_step: int = 0
        self._factor(0, total_steps, warmup_steps, final_factor)  # validates
        self.apply()

    def factor(self) -> float:
        """The current multiplier of the base rates."""
        return self._factor(self.last_step, self.total_steps, self.warmup_steps,
                            self.final_factor)

    def apply(self) -> None:
        """Set every group's `lr` for the current step."""
        factor = self.factor()
        groups = list(self.optimizer.param_groups)
        if len(groups) != len(self.base_lrs):
            raise NASRecError("the optimizer's param groups changed under its LR schedule")
        for group, base in zip(groups, self.base_lrs):
            group["lr"] = base * factor

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
                "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "final_factor": self.final_factor, "schedule": self.schedule}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the position (and base rates) and re-apply the rates."""
        self.last_step = int(state["last_step"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self.apply()
