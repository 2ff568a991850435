"""Supernet training with `--optimizer adam` (SlicedAdam on the body, torch Adam on the
data-parallel tables): resumable bit for bit, and 2 ranks train like 1."""

from __future__ import annotations

import json

import pytest
import torch
from sliced_steps import narrow_space
from toy_training import read_metrics, run_ranks, small_config, toy_trainer

from nasrec_torchrec.train.checkpoint import list_checkpoints
from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.sliced_adam import SlicedAdam

SETTINGS = dict(optimizer="adam", learning_rate=0.005, embedding_learning_rate=0.02,
                embedding_weight_decay=0.01, clip_grad_norm=1.0, epochs=2)


class _Interrupt(Exception):
    pass


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.local_shards()[0].tensor if hasattr(tensor, "local_shards") else tensor


def _sliced_adam(trainer) -> SlicedAdam:
    (adam,) = [o._optimizer for _, o in trainer.optimizer.optimizers
               if isinstance(getattr(o, "_optimizer", None), SlicedAdam)]
    return adam


def test_supernet_adam_updates_the_path_and_the_tables(context, tmp_path):
    trainer = toy_trainer(small_config(tmp_path, max_steps=3, checkpoint_every=0,
                                       eval_split="", **SETTINGS), context,
                          supernet=True, space=narrow_space())
    adam = _sliced_adam(trainer)
    tables = [p for group in adam.param_groups if group["synchronised"]
              for p in group["params"]]
    assert len(tables) == 4 and all(p.shape[1] == 4 for p in tables)  # data-parallel
    trainer.fit()
    counts = torch.cat([adam.state[p]["step"].flatten() for p in trainer.body.parameters()])
    assert int(counts.max()) == 3 and bool((counts == 0).any())  # the paths' elements only
    assert all(bool((adam.state[p]["step"] == 3).all()) for p in tables)  # whole tables


def test_supernet_adam_run_interrupted_and_resumed_equals_the_uninterrupted_run(
        context, tmp_path):
    space = narrow_space()

    def interrupt(trainer) -> None:
        if trainer.step == 8:
            raise _Interrupt()

    reference = toy_trainer(small_config(tmp_path / "a", checkpoint_every=3, **SETTINGS),
                            context, supernet=True, space=space)
    expected = reference.fit()
    with pytest.raises(_Interrupt):
        toy_trainer(small_config(tmp_path / "b", checkpoint_every=3, **SETTINGS), context,
                    supernet=True, space=space, callbacks=[interrupt]).fit()
    assert [s for s, _ in list_checkpoints(str(tmp_path / "b" / "checkpoints"))] == [3, 6]
    resumed = toy_trainer(small_config(tmp_path / "b", checkpoint_every=3, resume=True,
                                       **SETTINGS), context, supernet=True, space=space)
    got = resumed.fit()
    losses = [m["loss"] for m in read_metrics(str(tmp_path / "b"))]
    assert len(losses) == 16 and losses == [m["loss"] for m in read_metrics(str(tmp_path / "a"))]
    assert got["val"] == expected["val"]
    for key, value in reference.dmp.state_dict().items():
        assert torch.equal(_local(resumed.dmp.state_dict()[key]), _local(value)), key
    before, after = _sliced_adam(reference), _sliced_adam(resumed)
    for p, q in zip(reference.dmp.parameters(), resumed.dmp.parameters()):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(after.state[q][key], before.state[p][key]), key


def _two_rank_supernet_adam(output: str) -> None:
    context = init_distributed("cpu", num_threads=1)
    try:
        toy_trainer(small_config(output, checkpoint_every=0, **SETTINGS), context,
                    supernet=True, space=narrow_space()).fit()
    finally:
        teardown(context)


def test_two_rank_supernet_adam_equals_one_rank(context, tmp_path):
    run_ranks(2, _two_rank_supernet_adam, str(tmp_path / "two"))
    one = toy_trainer(small_config(tmp_path / "one", checkpoint_every=0, **SETTINGS), context,
                      supernet=True, space=narrow_space()).fit()
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["world_size"] == 2
    one_losses = [m["loss"] for m in read_metrics(str(tmp_path / "one"))]
    two_losses = [m["loss"] for m in read_metrics(str(tmp_path / "two"))]
    assert len(two_losses) == 16
    assert two_losses == pytest.approx(one_losses, rel=1e-4)
    assert two["val"]["auc"] == pytest.approx(one["val"]["auc"], abs=1e-4)
    assert two["val"]["log_loss"] == pytest.approx(one["val"]["log_loss"], rel=1e-4)
