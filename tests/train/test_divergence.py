"""A diverging run stops: a non-finite loss at once, an exploding one when the lower median
of the last 25 steps passes --max-loss; a lone spike does not stop it; the message names the
step and the last good checkpoint."""

from __future__ import annotations

import json
import math
import os

import pytest

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.divergence import WINDOW, LossGuard


def test_a_lone_spike_passes_and_a_non_finite_loss_stops(tmp_path):
    guard = LossGuard(100.0, str(tmp_path))
    guard.check([0.69, 187.3, 0.87, 0.66], last_step=4)  # a small batch's spike
    guard.check([0.6] * 40, last_step=44)
    with pytest.raises(NASRecError, match=r"training diverged at step 46: the training loss is "
                       r"nan; stopped, no checkpoint was saved before it"):
        guard.check([0.6, math.nan, 0.6], last_step=47)


def test_an_exploding_loss_stops_at_the_step_the_median_passes(tmp_path):
    guard = LossGuard(100.0, str(tmp_path))
    guard.check([0.7] * 10, last_step=10)
    # steps 11.. explode: the lower median of the last steps passes 100 at step 21
    with pytest.raises(NASRecError, match=r"at step 21: the median training loss of steps 1-21 "
                       r"is 500, above --max-loss 100"):
        guard.check([500.0] * 30, last_step=40)
    guard = LossGuard(None, str(tmp_path))  # no threshold: only non-finite losses stop
    guard.check([1e6] * (2 * WINDOW), last_step=2 * WINDOW)


def test_losses_looked_at_before_a_checkpoint_are_not_counted_twice(tmp_path):
    guard = LossGuard(100.0, str(tmp_path))
    guard.check([0.7, 200.0], last_step=2, record=False)
    guard.check([0.7, 200.0, 0.7], last_step=3)  # the same steps, then one more
    with pytest.raises(NASRecError, match="at step 5"):
        guard.check([300.0, 300.0], last_step=5)


def test_the_message_names_the_last_good_checkpoint(tmp_path):
    good = tmp_path / "step_000000020"
    good.mkdir()
    (good / "state.json").write_text(json.dumps({"step": 20}))
    with pytest.raises(NASRecError, match=rf"the last good checkpoint is "
                       rf"{os.path.join(str(tmp_path), 'step_000000020')}\. Try a lower --lr, a "
                       r"longer --lr-warmup-steps or a smaller --clip-grad-norm$"):
        LossGuard(100.0, str(tmp_path)).check([math.inf], last_step=21)
