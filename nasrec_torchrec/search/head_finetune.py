"""The post-training fine-tune of a subnet's final FC, without autograd.

The final FC maps the frozen body's features to one logit, so fine-tuning it alone under the
binary cross-entropy is logistic regression, whose gradient has a closed form:
`d loss / d logit = (sigmoid(logit) - label) / B`, `d loss / d w = xᵀ (that)`. `HeadFinetune`
runs exactly the steps of `torch.optim.Adagrad` (no weight decay, no lr decay, zero initial
accumulator) or of `torch.optim.Adam` (no weight decay, no amsgrad) on that gradient: the same
arithmetic as an autograd fine-tune of the layer, at a small fraction of its per-step overhead
(500 steps in tens of milliseconds).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import ElasticLinear, Ranges
from nasrec_torchrec.train.config import TrainConfig


@contextmanager
def single_thread() -> Iterator[None]:
    """Run the enclosed torch ops on one thread: a head step's ops are too small to share
    (on a busy 2-core machine, 500 steps took 13 s on 2 threads against 0.6 s on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _AdagradState:
    """`torch.optim.Adagrad`'s accumulator and step for one tensor."""

    def __init__(self, param: torch.Tensor, eps: float, betas: tuple[float, float]) -> None:
        self.sum = torch.zeros_like(param)
        self.eps = eps

    def step(self, param: torch.Tensor, grad: torch.Tensor, rate: float) -> None:
        """`sum += g²; param -= rate g / (√sum + eps)`, in place."""
        self.sum.addcmul_(grad, grad, value=1)
        param.addcdiv_(grad, self.sum.sqrt().add_(self.eps), value=-rate)


class _AdamState:
    """`torch.optim.Adam`'s moments and step for one tensor (its single-tensor arithmetic)."""

    def __init__(self, param: torch.Tensor, eps: float, betas: tuple[float, float]) -> None:
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.steps = 0
        self.eps = eps
        self.betas = betas

    def step(self, param: torch.Tensor, grad: torch.Tensor, rate: float) -> None:
        """One bias-corrected Adam step of `param` at `rate`, in place."""
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = rate / (1 - beta1 ** float(self.steps))
        second_root = (1 - beta2 ** float(self.steps)) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / second_root).add_(self.eps)
        param.addcdiv_(self.exp_avg, denom, value=-step_size)


HEAD_OPTIMIZERS = {"adagrad": _AdagradState, "adam": _AdamState}
"""The optimizers a head fine-tune runs (the names of `train.config.OPTIMIZER_CHOICES`)."""


class HeadFinetune:
    """Adagrad or Adam steps on the columns `ranges` of a one-output `ElasticLinear` head.

    The head computes `features @ weight[0, columns] + bias` with `columns` the concatenated
    `ranges`; only those columns get a gradient, so only they (and the bias) are trained and
    written back by `finish()`.

    Args:
        head: the subnet's final FC (`out` = 1); changed only by `finish()`.
        ranges: its input column ranges (as the body passes them).
        learning_rates: the rate of each step (`train.schedules.step_rates`).
        eps: the optimizer's epsilon.
        optimizer: "adagrad" or "adam" (`HEAD_OPTIMIZERS`).
        betas: Adam's (beta1, beta2).

    Example::

        trainer = HeadFinetune(net.head, ranges, step_rates("cosine", 0.04, 500), 1e-8)
        for features, labels in batches:
            trainer.step(features, labels)
        losses = trainer.finish()
    """

    def __init__(self, head: ElasticLinear, ranges: Ranges, learning_rates: Sequence[float],
                 eps: float, optimizer: str = "adagrad",
                 betas: tuple[float, float] = TrainConfig.betas) -> None:
        if optimizer not in HEAD_OPTIMIZERS:
            raise NASRecError(f"head fine-tune: optimizer {optimizer!r} is not one of "
                              f"{list(HEAD_OPTIMIZERS)}")
        self.head = head
        self.columns = torch.cat([torch.arange(start, start + width) for start, width in ranges]) \
            if ranges else torch.zeros(0, dtype=torch.long)
        self.weight = head.weight.detach()[0, self.columns]  # a copy (indexing)
        self.bias = head.bias.detach()[:1].clone()
        state = HEAD_OPTIMIZERS[optimizer]
        self.weight_state = state(self.weight, eps, tuple(betas))
        self.bias_state = state(self.bias, eps, tuple(betas))
        self.learning_rates = list(learning_rates)
        self.losses: list[torch.Tensor] = []

    @torch.no_grad()
    def step(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """One step on a batch: `features [B, H]` (the head's input), `labels [B]`."""
        rate = self.learning_rates[len(self.losses)]
        logits = torch.addmv(self.bias, features, self.weight)
        self.losses.append(F.binary_cross_entropy_with_logits(logits, labels))
        grad_logits = (torch.sigmoid(logits) - labels) * (1.0 / len(labels))
        self.weight_state.step(self.weight, torch.mv(features.t(), grad_logits), rate)
        self.bias_state.step(self.bias, grad_logits.sum().view(1), rate)

    @torch.no_grad()
    def finish(self) -> list[float]:
        """Write the trained columns and bias into the head; the per-step losses."""
        self.head.weight[0, self.columns] = self.weight
        self.head.bias[:1] = self.bias
        return torch.stack(self.losses).tolist() if self.losses else []
