"""Stopping a diverging run: a training loss that turns non-finite or explodes.

The trainer hands `LossGuard.check` the per-step losses it already gathers for
`metrics.jsonl` (every `log_every` steps), and the pending ones before every checkpoint, so a
checkpoint is only written after its steps passed: the run stops at the first non-finite
loss, or when the median loss of the last `WINDOW` steps (of all steps, early in the run)
exceeds `max_loss` (a log loss far above chance, 0.69; the lower median, so that a lone
spike of a small batch does not count), with a `NASRecError` naming the step and the last
good checkpoint. Nothing here changes what a healthy run computes.
"""

from __future__ import annotations

import collections
import math
import statistics
from typing import Optional, Sequence

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.checkpoint import latest_checkpoint

WINDOW = 25


class LossGuard:
    """Watches the training losses of one run.

    Args:
        max_loss: the largest (lower) median loss of the last `WINDOW` steps (None: only
            non-finite losses stop the run).
        checkpoint_dir: where the run's checkpoints are (named in the message).
    """

    def __init__(self, max_loss: Optional[float], checkpoint_dir: str) -> None:
        self.max_loss = max_loss
        self.checkpoint_dir = checkpoint_dir
        self._recent: collections.deque[float] = collections.deque(maxlen=WINDOW)

    def check(self, losses: Sequence[float], last_step: int, record: bool = True) -> None:
        """Raise `NASRecError` when the losses of the steps ending at `last_step` diverge;
        with `record` False they are looked at only (they will be given again)."""
        recent = collections.deque(self._recent, maxlen=WINDOW)
        first_step = last_step - len(losses) + 1
        for offset, loss in enumerate(losses):
            step = first_step + offset
            if not math.isfinite(loss):
                raise self._diverged(step, f"the training loss is {loss}")
            recent.append(loss)
            median = statistics.median_low(recent)
            if self.max_loss is not None and median > self.max_loss:
                raise self._diverged(step, f"the median training loss of steps "
                                     f"{step - len(recent) + 1}-{step} is {median:.4g}, above "
                                     f"--max-loss {self.max_loss:g}")
        if record:
            self._recent = recent

    def _diverged(self, step: int, what: str) -> NASRecError:
        last = latest_checkpoint(self.checkpoint_dir)
        kept = (f"the last good checkpoint is {last}" if last else
                "no checkpoint was saved before it (--checkpoint-every N keeps some)")
        return NASRecError(f"training diverged at step {step}: {what}; stopped, {kept}. Try "
                           "a lower --lr, a longer --lr-warmup-steps or a smaller "
                           "--clip-grad-norm")
