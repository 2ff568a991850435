"""LR schedules: the registry's multipliers and the schedule over param groups (pure Python)."""

from __future__ import annotations

import math

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.schedules import (LR_SCHEDULES, LRSchedule, constant_factor,
                                             cosine_factor, linear_factor, step_rates,
                                             warmup_length)


def test_cosine_factor_without_warmup_runs_from_one_towards_final():
    assert cosine_factor(0, 10) == 1.0
    assert cosine_factor(9, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))
    assert 0.0 < cosine_factor(9, 10) < 0.03  # the last step still learns
    assert cosine_factor(10, 10) == 0.0 and cosine_factor(100, 10) == 0.0  # after the run
    assert cosine_factor(10, 10, final_factor=0.1) == pytest.approx(0.1)
    assert cosine_factor(9, 10, final_factor=0.1) > 0.1
    values = [cosine_factor(step, 10) for step in range(10)]
    assert values == sorted(values, reverse=True)


def test_cosine_factor_with_linear_warmup():
    values = [cosine_factor(step, 20, warmup_steps=4) for step in range(20)]
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[4] == 1.0 and values[5] < 1.0
    assert values[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert cosine_factor(6, 12, 0) == pytest.approx(0.5)


def test_warm_up_over_n_steps_or_a_fraction_of_the_run():
    assert warmup_length(10_000, 1000) == 1000
    assert warmup_length(300, 1000) == 1000  # a shorter run ends in its warm-up
    assert [cosine_factor(step, 3, 1000) for step in range(4)] == [0.001, 0.002, 0.003, 0.0]
    assert warmup_length(300, 1000, warmup_fraction=0.1) == 30  # the fraction instead
    assert warmup_length(300, 1000, warmup_fraction=0.0) == 0
    assert warmup_length(7, 0, warmup_fraction=0.25) == 2  # rounded


def test_cosine_factor_rejects_bad_arguments():
    with pytest.raises(NASRecError):
        cosine_factor(0, 0)
    with pytest.raises(NASRecError):
        cosine_factor(0, 10, warmup_steps=-1)


def test_constant_keeps_the_base_rate_and_checks_its_arguments():
    assert [constant_factor(step, 5) for step in range(7)] == [1.0] * 7
    with pytest.raises(NASRecError):
        constant_factor(0, 0)


def test_linear_decays_in_a_straight_line_after_the_warm_up():
    assert [linear_factor(step, 4) for step in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert [linear_factor(step, 10, 2, 0.5) for step in range(3)] == [0.5, 1.0, 1.0]
    assert linear_factor(6, 10, 2, 0.5) == pytest.approx(1.0 - 0.5 * 4 / 8)
    assert linear_factor(10, 10, final_factor=0.1) == 0.1
    assert step_rates("linear", 0.04, 2) == [0.04, 0.02]


def test_step_rates_follow_the_registered_schedule():
    rates = step_rates("cosine", 0.04, 4)
    assert rates == pytest.approx([0.04, 0.04 * (1 + 2 ** -0.5) / 2, 0.02,
                                   0.04 * (1 - 2 ** -0.5) / 2])
    assert step_rates("constant", 0.04, 3) == [0.04] * 3
    with pytest.raises(NASRecError, match="'step' is not one of cosine, constant, linear"):
        step_rates("step", 0.04, 3)


class _Groups:
    def __init__(self, *rates: float) -> None:
        self.param_groups = [{"lr": rate} for rate in rates]


def test_schedule_scales_every_group_from_its_own_base_and_resumes():
    optimizer = _Groups(0.1, 0.01)
    schedule = LRSchedule(optimizer, total_steps=10, warmup_steps=2)
    assert schedule.get_last_lr() == pytest.approx([0.05, 0.005])
    for _ in range(4):
        schedule.step()
    assert schedule.get_last_lr() == pytest.approx([0.1 * cosine_factor(4, 10, 2),
                                                    0.01 * cosine_factor(4, 10, 2)])
    other = LRSchedule(_Groups(9.0, 9.0), total_steps=10, warmup_steps=2)
    other.load_state_dict(schedule.state_dict())
    assert other.get_last_lr() == schedule.get_last_lr()


def test_a_registered_schedule_is_usable_by_name():
    LR_SCHEDULES["half"] = lambda step, total, warmup, final: 0.5
    try:
        assert LRSchedule(_Groups(0.2), total_steps=3, schedule="half").get_last_lr() == [0.1]
    finally:
        del LR_SCHEDULES["half"]
