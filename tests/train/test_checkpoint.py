"""Checkpoints: atomic, pruned, and a 2-rank checkpoint reloads exactly into 1 rank."""

from __future__ import annotations

import os

import pytest
import torch
from two_rank_job import GLOBAL_BATCH, ROWS, TWO_RANK_CHECKPOINT_STEP, TWO_RANK_STEPS
from toy_training import ToyLoader, full_state, toy_dmp, toy_schema, train_toy

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.checkpoint import (
    latest_checkpoint, list_checkpoints, load_checkpoint, read_run_state, save_checkpoint)
from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.optimizers import build_optimizer
from nasrec_torchrec.train.schedules import LRSchedule


@pytest.fixture(scope="module")
def context():
    context = init_distributed("cpu", num_threads=1)
    yield context
    teardown(context)


def test_keeps_the_last_k_complete_checkpoints(context, tmp_path):
    dmp = toy_dmp(toy_schema())
    optimizer = build_optimizer(dmp)
    for step in (1, 2, 3, 4):
        save_checkpoint(str(tmp_path), step, dmp, optimizer, {"step_seen": step}, keep_last=2)
    assert [step for step, _ in list_checkpoints(str(tmp_path))] == [3, 4]
    assert latest_checkpoint(str(tmp_path)).endswith("step_000000004")
    assert read_run_state(latest_checkpoint(str(tmp_path)))["run_state"] == {"step_seen": 4}
    # an interrupted save leaves only a staging directory, which is never picked up
    os.makedirs(tmp_path / ".staging_step_000000005")
    os.makedirs(tmp_path / "step_000000006")  # no state.json: incomplete
    assert latest_checkpoint(str(tmp_path)).endswith("step_000000004")
    assert latest_checkpoint(str(tmp_path / "absent")) is None


def test_run_state_must_be_json(context, tmp_path):
    dmp = toy_dmp(toy_schema())
    with pytest.raises(NASRecError, match="JSON"):
        save_checkpoint(str(tmp_path), 1, dmp, None, {"bad": object()})


def test_capped_checkpoint_does_not_load_into_full_tables(context, tmp_path):
    schema = toy_schema()
    capped = toy_dmp(schema, embedding_cap=20)
    path = save_checkpoint(str(tmp_path), 1, capped, None, {})
    with pytest.raises(NASRecError, match="does not match"):
        # a model with a differently named table is missing it in the checkpoint
        load_checkpoint(path, toy_dmp(toy_schema((7, 40, 300, 1000, 5))))


def test_corrupt_state_file_names_the_file(tmp_path):
    (tmp_path / "state.json").write_text("{oops")
    with pytest.raises(NASRecError, match="state.json:1"):
        read_run_state(str(tmp_path))


def test_two_rank_checkpoint_reloads_exactly_into_one_rank(context, two_rank_run):
    schema = toy_schema()
    path = latest_checkpoint(os.path.join(two_rank_run, "checkpoints"))
    assert read_run_state(path)["world_size"] == 2
    # another plan (column-wise), another seed: everything must come from the checkpoint
    dmp = toy_dmp(schema, seed=9, sharding_types=["column_wise"])
    optimizer = build_optimizer(dmp)
    run_state = load_checkpoint(path, dmp, optimizer)
    assert run_state["step"] == TWO_RANK_CHECKPOINT_STEP
    expected = torch.load(os.path.join(two_rank_run, "state.pt"))
    got = full_state(dmp, optimizer)
    assert set(got) == set(expected)
    assert any(".momentum1" in key for key in got)  # fused Adagrad state included
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)

    # and training goes on as the 2-rank run did
    schedule = LRSchedule(optimizer, TWO_RANK_STEPS)
    schedule.load_state_dict(run_state["schedule"])
    losses = train_toy(dmp, ToyLoader(schema, ROWS, GLOBAL_BATCH), TWO_RANK_STEPS,
                       start_step=TWO_RANK_CHECKPOINT_STEP, optimizer=optimizer,
                       schedule=schedule)
    two_rank_losses = torch.load(os.path.join(two_rank_run, "losses.pt"))["losses"]
    assert losses == pytest.approx(two_rank_losses[TWO_RANK_CHECKPOINT_STEP:], rel=1e-4)
