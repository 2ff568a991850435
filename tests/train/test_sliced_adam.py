"""SlicedAdam: on any path, a step is torch Adam on the materialized subnet for the elements
the path touches (each with its own step count); untouched elements do not move."""

from __future__ import annotations

import copy
from typing import Optional

import pytest
import torch
from sliced_steps import narrow_space, run_steps, supernet_pair
from torch import nn

from nasrec_torchrec.nn.elastic import ElasticLinear, SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.train.sliced_adam import SlicedAdam, bias_corrections

LR = 0.1
# (rows, column ranges) of the three steps of the hand-checked layer [3 x 4]
PATHS = [(2, ((0, 2),)), (3, ((1, 3),)), (1, ((0, 1), (3, 1)))]


def _hand_layer() -> tuple[ElasticLinear, SliceGradients]:
    torch.manual_seed(0)
    layer = ElasticLinear(in_max=4, out_max=3)
    store = SliceGradients()
    attach_slice_gradients(layer, store)
    return layer, store


def _columns(ranges) -> list[int]:
    return [start + offset for start, width in ranges for offset in range(width)]


def _inputs(step: int, width: int) -> torch.Tensor:
    return torch.randn(5, width, generator=torch.Generator().manual_seed(step))


def test_each_element_takes_its_own_adam_steps_on_the_materialized_layer() -> None:
    layer, store = _hand_layer()
    initial = layer.weight.detach().clone()
    optimizer = SlicedAdam(layer.parameters(), store, lr=LR)
    # reference: a torch Adam per element, fed the gradient of the materialized nn.Linear
    # whenever the path uses that element
    elements = {key: nn.Parameter(value.clone().reshape(1))
                for key, value in [((o, c), initial[o, c]) for o in range(3) for c in range(4)]
                + [((o, "bias"), layer.bias.detach()[o]) for o in range(3)]}
    adams = {key: torch.optim.Adam([p], lr=LR) for key, p in elements.items()}
    moves = []
    for step, (rows, ranges) in enumerate(PATHS):
        columns = _columns(ranges)
        x = _inputs(step, len(columns))
        linear = nn.Linear(len(columns), rows)
        linear.load_state_dict(layer.sliced_state(rows, ranges))
        (linear(x) * torch.arange(1.0, rows + 1)).sum().backward()
        for o in range(rows):
            for j, c in enumerate(columns):
                elements[o, c].grad = linear.weight.grad[o, j].reshape(1)
                adams[o, c].step()
            elements[o, "bias"].grad = linear.bias.grad[o].reshape(1)
            adams[o, "bias"].step()
        before = layer.weight.detach().clone()
        (layer(x, rows, ranges) * torch.arange(1.0, rows + 1)).sum().backward()
        optimizer.step()
        moves.append((layer.weight.detach() - before, linear.weight.grad))
    expected = torch.cat([elements[o, c] for o in range(3) for c in range(4)]).view(3, 4)
    assert torch.equal(layer.weight.detach(), expected)  # bit-identical to torch Adam
    assert torch.equal(layer.bias.detach(), torch.cat([elements[o, "bias"] for o in range(3)]))
    state = optimizer.state[layer.weight]
    # how often each element was on the path (hand-counted from PATHS)
    assert state["step"].tolist() == [[2, 2, 1, 2], [1, 2, 1, 1], [0, 1, 1, 1]]
    assert optimizer.state[layer.bias]["step"].tolist() == [3, 2, 1]
    # never on a path: value and moments untouched
    assert layer.weight[2, 0] == initial[2, 0] and state["exp_avg"][2, 0] == 0
    # row 2 is first used at step 2: its first Adam step, lr * sign(g) (a count shared by
    # the whole tensor would bias-correct it as a second step: 0.744 lr)
    move, grad = moves[1]
    torch.testing.assert_close(move[2, 1:], -LR * grad[2].sign(), rtol=1e-6, atol=0.0)


def test_bias_corrections_are_torch_adams_python_floats() -> None:
    counts = torch.tensor([[1, 7], [300, 2]], dtype=torch.int32)
    first, second = bias_corrections(0.9, 0.999, counts)
    assert first.dtype == torch.float64 and second.dtype == torch.float32
    for k, one, two in zip(counts.flatten().tolist(), first.flatten(), second.flatten()):
        assert float(one) == 1 - 0.9 ** float(k)
        assert float(two) == float(torch.tensor((1 - 0.999 ** float(k)) ** 0.5))


class SubnetAdam:
    """Reference trainer: on each path, the materialized subnet (`NASRecNet.from_supernet`)
    runs forward and backward, and torch Adam steps the supernet elements it holds, each with
    its own moments and count (the elements with the same count share one torch Adam step).

    Used by `run_steps` as both the model and its optimizer.
    """

    def __init__(self, supernet: Supernet, max_grad_norm: Optional[float] = None,
                 **adam: float) -> None:
        self.supernet = supernet
        self.params = list(supernet.parameters())
        self.adam = adam
        self.max_grad_norm = max_grad_norm
        # a twin holding each element's index in the flat vector: its subnets hold the
        # indices of their elements
        total = sum(p.numel() for p in self.params)
        assert total < 2 ** 24  # exact in float32
        self.ids = copy.deepcopy(supernet)
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.arange(total).float(),
                                                self.ids.parameters())
        self.exp_avg = torch.zeros(total)
        self.exp_avg_sq = torch.zeros(total)
        self.counts = torch.zeros(total, dtype=torch.long)
        self.subnet: Optional[NASRecNet] = None
        self.subnet_ids: list[torch.Tensor] = []

    def __call__(self, dense: torch.Tensor, sparse: torch.Tensor, architecture) -> torch.Tensor:
        with torch.random.fork_rng():  # building modules draws weights we overwrite
            self.subnet = NASRecNet.from_supernet(self.supernet, architecture)
            ids = NASRecNet.from_supernet(self.ids, architecture)
        self.subnet_ids = [p.detach().long().flatten() for p in ids.parameters()]
        return self.subnet(dense, sparse)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.subnet = None

    def step(self) -> None:
        used = [(p.grad.flatten(), ids) for p, ids in zip(self.subnet.parameters(),
                                                         self.subnet_ids) if p.grad is not None]
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.subnet.parameters(), self.max_grad_norm)
        grads = torch.cat([grad for grad, _ in used])
        ids = torch.cat([ids for _, ids in used])
        assert len(ids.unique()) == len(ids)  # no element twice on one path
        flat = torch.nn.utils.parameters_to_vector(self.params).detach()
        counts = self.counts[ids] + 1
        for count in counts.unique().tolist():
            chosen = ids[counts == count]
            element = nn.Parameter(flat[chosen].clone())
            adam = torch.optim.Adam([element], **self.adam)
            adam.state[element] = {"step": torch.tensor(float(count - 1)),
                                   "exp_avg": self.exp_avg[chosen].clone(),
                                   "exp_avg_sq": self.exp_avg_sq[chosen].clone()}
            element.grad = grads[counts == count].clone()
            adam.step()
            flat[chosen] = element.detach()
            self.exp_avg[chosen] = adam.state[element]["exp_avg"]
            self.exp_avg_sq[chosen] = adam.state[element]["exp_avg_sq"]
        self.counts[ids] = counts
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(flat, self.params)

    def continue_from(self, weights: torch.Tensor, exp_avg: torch.Tensor,
                      exp_avg_sq: torch.Tensor) -> None:
        """Take these flat weights and moments (the counts stay this trainer's own)."""
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(weights.clone(), self.params)
        self.exp_avg, self.exp_avg_sq = exp_avg.clone(), exp_avg_sq.clone()


def _flat(optimizer: SlicedAdam, model: Supernet, key: str) -> torch.Tensor:
    return torch.cat([optimizer.state[p][key].flatten() for p in model.parameters()])


@pytest.mark.parametrize("preset, max_grad_norm, weight_decay, batch_norm", [
    ("nasrec-full", None, 0.0, False), ("nasrec-full", 0.05, 0.1, False),
    ("nasrec-full-plus", None, 0.0, False), ("nasrec-full-plus", None, 0.0, True)])
def test_every_step_is_torch_adam_on_the_materialized_subnet(
        preset: str, max_grad_norm: Optional[float], weight_decay: float,
        batch_norm: bool) -> None:
    """12 steps of different paths; after each, the supernet weights and moments equal the
    reference's (which then continues from them: a gradient that is zero in exact arithmetic
    is rounding noise that Adam would scale up to a full step, differently on each side).
    With BatchNorm both sides train in training mode (batch statistics)."""
    space = narrow_space(preset)
    reference, sliced, store = supernet_pair(space, batch_norm)
    adam = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=weight_decay)
    subnet_adam = SubnetAdam(reference, max_grad_norm, **adam)
    sliced_adam = SlicedAdam(sliced.parameters(), store, max_grad_norm=max_grad_norm, **adam)
    initial = torch.nn.utils.parameters_to_vector(sliced.parameters()).detach().clone()

    def compare_and_continue() -> None:
        got = torch.nn.utils.parameters_to_vector(sliced.parameters()).detach()
        expected = torch.nn.utils.parameters_to_vector(reference.parameters()).detach()
        counts = _flat(sliced_adam, sliced, "step").long()
        assert torch.equal(counts, subnet_adam.counts)  # the same elements, as often
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(_flat(sliced_adam, sliced, key),
                                       getattr(subnet_adam, key), atol=1e-8, rtol=1e-5)
        assert torch.equal(got[counts == 0], initial[counts == 0])  # never on a path
        subnet_adam.continue_from(got, _flat(sliced_adam, sliced, "exp_avg"),
                                  _flat(sliced_adam, sliced, "exp_avg_sq"))

    run_steps(space, (sliced, subnet_adam), (sliced_adam, subnet_adam),
              after_step=compare_and_continue)
    counts = _flat(sliced_adam, sliced, "step")
    assert len(counts.unique()) > 6 and bool((counts == 0).any())  # the paths differ
