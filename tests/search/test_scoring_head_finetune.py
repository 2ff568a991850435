"""The closed-form head fine-tune equals autograd + torch.optim.Adagrad (or Adam) +
LRSchedule."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")

from nasrec_torchrec.nn.elastic import ElasticLinear  # noqa: E402
from nasrec_torchrec.search.head_finetune import HeadFinetune  # noqa: E402
from nasrec_torchrec.train.schedules import LRSchedule, step_rates  # noqa: E402

STEPS = 40
BATCH = 32


def _data(width: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(STEPS * BATCH, width, generator=generator)
    labels = (torch.rand(STEPS * BATCH, generator=generator) < 0.3).float()
    return features, labels


BETAS = (0.8, 0.99)


def _autograd_reference(head: ElasticLinear, ranges, features, labels, constant: bool,
                        adam: bool = False):
    if adam:
        optimizer = torch.optim.Adam(head.parameters(), lr=0.04, betas=BETAS, eps=1e-8)
    else:
        optimizer = torch.optim.Adagrad(head.parameters(), lr=0.04, eps=1e-8)
    schedule = LRSchedule(optimizer, STEPS, schedule="constant" if constant else "cosine")
    losses = []
    for start in range(0, STEPS * BATCH, BATCH):
        optimizer.zero_grad()
        logits = head(features[start:start + BATCH], 1, ranges).squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels[start:start + BATCH])
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("adam", [False, True])
@pytest.mark.parametrize("constant", [False, True])
def test_head_finetune_equals_autograd_and_torch_optimizer_on_the_used_columns(constant, adam):
    torch.manual_seed(0)
    reference = ElasticLinear(12, 1)
    trained = ElasticLinear(12, 1)
    trained.load_state_dict(reference.state_dict())
    initial = trained.weight.detach().clone()
    ranges = ((0, 3), (5, 4))  # columns 3, 4 and 9.. are not read
    features, labels = _data(7)
    expected = _autograd_reference(reference, ranges, features, labels, constant, adam)
    rates = step_rates("constant" if constant else "cosine", 0.04, STEPS)
    trainer = HeadFinetune(trained, ranges, rates, 1e-8, "adam" if adam else "adagrad", BETAS)
    for start in range(0, STEPS * BATCH, BATCH):
        trainer.step(features[start:start + BATCH], labels[start:start + BATCH])
    losses = trainer.finish()
    assert losses == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(trained.weight, reference.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(trained.bias, reference.bias, rtol=1e-6, atol=1e-7)
    # the unread columns keep their values, every read one moved
    unread = torch.tensor([3, 4, 9, 10, 11])
    read = torch.tensor([0, 1, 2, 5, 6, 7, 8])
    assert torch.equal(trained.weight[0, unread], initial[0, unread])
    assert bool((trained.weight[0, read] != initial[0, read]).all())
