"""Gradient-norm clipping of the dense optimizer (`--clip-grad-norm`, the official code's 5.0)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from sliced_steps import run_steps, supernet_pair
from torchrec.distributed.train_pipeline import TrainPipelineBase
from toy_training import ToyLoader, read_metrics, run_ranks, toy_dmp, toy_schema, toy_trainer

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.networks import Supernet
from nasrec_torchrec.settings import to_argv
from nasrec_torchrec.space import get_space
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.optimizers import build_optimizer
from nasrec_torchrec.train.options import add_run_arguments, run_from_args
from nasrec_torchrec.train.sliced_adagrad import SlicedAdagrad


def _supernet_run(max_norm: float, clip: bool) -> tuple[Supernet, Supernet, list[float]]:
    """12 supernet steps: torch Adagrad on full gradients clipped by `clip_grad_norm_` vs
    SlicedAdagrad(max_grad_norm); returns both models and the reference's unclipped norms."""
    space = get_space("nasrec-full")
    reference, sliced, store = supernet_pair(space)
    adagrad = torch.optim.Adagrad(reference.parameters(), lr=0.05, eps=0.1)
    sliced_adagrad = SlicedAdagrad(sliced.parameters(), store, lr=0.05, eps=0.1,
                                   max_grad_norm=max_norm if clip else None)
    norms = []

    def clip_reference(model: Supernet) -> None:
        if model is reference:
            norms.append(float(torch.nn.utils.clip_grad_norm_(reference.parameters(),
                                                              max_norm)))

    run_steps(space, (reference, sliced), (adagrad, sliced_adagrad), on_backward=clip_reference)
    return reference, sliced, norms


def test_sliced_adagrad_clips_like_clip_grad_norm_on_full_gradients() -> None:
    reference, sliced, norms = _supernet_run(max_norm=0.05, clip=True)
    assert sum(norm > 0.05 for norm in norms) >= 6  # the clipping is active on most steps
    for (name, expected), actual in zip(reference.named_parameters(), sliced.parameters()):
        torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5, msg=name)
    _, unclipped, _ = _supernet_run(max_norm=0.05, clip=False)
    assert any(not torch.allclose(a, b, atol=1e-4)
               for a, b in zip(unclipped.parameters(), sliced.parameters()))


def _dense_parameters(dmp) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in dmp.named_parameters() if ".embedding_bags." not in name}


def test_first_step_uses_the_dense_gradients_scaled_to_the_norm(context) -> None:
    schema, max_norm, lr, eps = toy_schema(), 0.01, 0.04, 0.5
    steps = {}
    for clip in (None, max_norm):
        dmp = toy_dmp(schema)
        before = {name: p.detach().clone() for name, p in _dense_parameters(dmp).items()}
        optimizer = build_optimizer(dmp, learning_rate=lr, eps=eps, max_grad_norm=clip)
        TrainPipelineBase(dmp, optimizer, torch.device("cpu")).progress(
            iter(ToyLoader(schema, 64, 32)))
        # .grad holds what the step applied (the pipeline zeroes it at the next step)
        steps[clip] = {name: (before[name], p.grad.detach().clone(), p.detach().clone())
                       for name, p in _dense_parameters(dmp).items()}
    total = torch.linalg.vector_norm(torch.stack(
        [torch.linalg.vector_norm(grad) for _, grad, _ in steps[None].values()]))
    assert total > 10 * max_norm
    scale = max_norm / (float(total) + 1e-6)
    for name, (before, grad, after) in steps[max_norm].items():
        torch.testing.assert_close(grad, steps[None][name][1] * scale, msg=name)
        # Adagrad's first step from a zero accumulator: -lr * g / (|g| + eps)
        torch.testing.assert_close(after, before - lr * grad / (grad.abs() + eps), msg=name)


@pytest.mark.parametrize("supernet", [False, True])
def test_trainer_clips_the_dense_gradients_and_records_the_norm(context, tmp_path,
                                                                supernet) -> None:
    config = TrainConfig(output=str(tmp_path), batch_size=64, eval_batch_size=50,
                         embedding_dim=4, embedding_cap=None, max_steps=2, eval_split="",
                         progress_bar=False, clip_grad_norm=1e-3)
    trainer = toy_trainer(config, context, supernet=supernet)
    trainer.fit()
    grads = [p.grad for name, p in trainer.dmp.named_parameters()
             if ".embedding_bags." not in name and p.grad is not None]
    assert grads  # the last step's gradients, as applied
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert float(norm) == pytest.approx(1e-3, rel=1e-4)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["config"]["clip_grad_norm"] == 1e-3


def test_clip_grad_norm_flag_and_validation(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    args = parser.parse_args(["--output", str(tmp_path), "--clip-grad-norm", "5"])
    config = run_from_args(TrainConfig, args)
    assert config.clip_grad_norm == 5.0
    assert TrainConfig.from_dict(config.to_dict()).clip_grad_norm == 5.0
    args = parser.parse_args(["--output", str(tmp_path)])
    assert run_from_args(TrainConfig, args).clip_grad_norm == 5.0  # the default
    args = parser.parse_args(["--output", str(tmp_path), "--clip-grad-norm", "0"])  # off,
    off = run_from_args(TrainConfig, args)  # recorded as the runs before the default were
    assert off.clip_grad_norm is None and to_argv(off)[-2:] == ["--clip-grad-norm", "0"]
    off.validate()
    with pytest.raises(NASRecError, match="'clip_grad_norm'"):
        TrainConfig(output=str(tmp_path), clip_grad_norm=-1.0).validate()


def _clipped_config(output: str) -> TrainConfig:
    return TrainConfig(output=output, batch_size=64, eval_batch_size=50, embedding_dim=4,
                       embedding_cap=None, max_steps=6, log_every=1, checkpoint_every=0,
                       eval_split="", progress_bar=False, clip_grad_norm=0.05,
                       lr_warmup_steps=0)  # the full rate: the clipping shows in the losses


def _two_rank_clipped(output: str) -> None:
    context = init_distributed("cpu", num_threads=1)
    try:
        for supernet in (False, True):
            toy_trainer(_clipped_config(f"{output}/{supernet}"), context,
                        supernet=supernet).fit()
    finally:
        teardown(context)


def test_two_rank_clipped_training_equals_one_rank(context, tmp_path) -> None:
    run_ranks(2, _two_rank_clipped, str(tmp_path / "two"))
    for supernet in (False, True):
        one_dir = str(tmp_path / "one" / str(supernet))
        toy_trainer(_clipped_config(one_dir), context, supernet=supernet).fit()
        unclipped_dir = str(tmp_path / "unclipped" / str(supernet))
        config = _clipped_config(unclipped_dir)
        config.clip_grad_norm = None
        toy_trainer(config, context, supernet=supernet).fit()
        one = [m["loss"] for m in read_metrics(one_dir)]
        two = [m["loss"] for m in read_metrics(str(tmp_path / "two" / str(supernet)))]
        unclipped = [m["loss"] for m in read_metrics(unclipped_dir)]
        assert len(two) == 6 and two == pytest.approx(one, rel=1e-5)
        assert unclipped[-1] != pytest.approx(one[-1], rel=1e-5)  # the clipping acted
