"""A small supernet trained by full-size gradients beside a copy trained by slice gradients."""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Callable, Optional

import torch

from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.networks import Supernet
from nasrec_torchrec.space import (
    SearchSpace, get_space, sample_any_op_any_conn, sample_single_op_any_conn)


def narrow_space(preset: str = "nasrec-full") -> SearchSpace:
    """A preset (nasrec-full: the paper's operators; nasrec-full-plus: with FM and Cross) at
    small widths: a supernet of 3 dense and 4 sparse features holds ~40k weights, not ~30M."""
    return dataclasses.replace(get_space(preset), name=f"{preset}-narrow",
                               dense_dims=(4, 8, 16), sparse_dims=(2, 3, 5))


def supernet_pair(space: SearchSpace, batch_norm: bool = False
                  ) -> tuple[Supernet, Supernet, SliceGradients]:
    """A seeded 3-dense, 4-sparse supernet of `space` (BatchNorm on the dense operators when
    `batch_norm`) and a deep copy recording slice gradients into the returned store."""
    torch.manual_seed(0)
    reference = Supernet(space, 3, 4, embedding_dim=4, batch_norm=batch_norm)
    sliced = copy.deepcopy(reference)
    store = SliceGradients()
    attach_slice_gradients(sliced, store)
    return reference, sliced, store


def run_steps(space: SearchSpace, models: tuple[Supernet, Supernet],
              optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer], *,
              on_backward: Optional[Callable[[Supernet], None]] = None,
              after_step: Optional[Callable[[], None]] = None, steps: int = 12) -> None:
    """Train each model with its optimizer on the same `steps` random batches of 8 and paths
    (any-op on every third step, single-op otherwise); `on_backward(model)` runs between the
    backward and the optimizer step, `after_step()` once both models took the step."""
    rng = random.Random(0)
    for step in range(steps):
        sampler = sample_any_op_any_conn if step % 3 == 0 else sample_single_op_any_conn
        architecture = sampler(space, rng)
        dense, sparse = torch.randn(8, 3), torch.randn(8, 4, 4)
        labels = torch.randint(0, 2, (8,)).float()
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(dense, sparse, architecture), labels)
            loss.backward()
            if on_backward is not None:
                on_backward(model)
            optimizer.step()
        if after_step is not None:
            after_step()
