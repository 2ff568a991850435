"""Shared fixtures of the training tests: a one-rank context, one 2-rank toy run reused by
several tests."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # toy_training, for the 2-rank children

TWO_RANK_STEPS = 5
TWO_RANK_CHECKPOINT_STEP = 3
GLOBAL_BATCH = 64
ROWS = GLOBAL_BATCH * TWO_RANK_STEPS


def two_rank_job(out_dir: str) -> None:
    """2 ranks, table-wise tables: train 5 steps of global batch 64, checkpoint after step 3
    (and dump the gathered state there), record the global losses."""
    import torch
    from toy_training import ToyLoader, full_state, toy_dmp, toy_schema, train_toy

    from nasrec_torchrec.train.checkpoint import save_checkpoint
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.optimizers import build_optimizer
    from nasrec_torchrec.train.schedules import LRSchedule

    context = init_distributed("cpu", num_threads=1)
    try:
        schema = toy_schema()
        dmp = toy_dmp(schema, sharding_types=["table_wise"])
        loader = ToyLoader(schema, ROWS, GLOBAL_BATCH // 2, rank=context.rank, world_size=2)
        optimizer = build_optimizer(dmp)
        schedule = LRSchedule(optimizer, TWO_RANK_STEPS)

        def on_step(step, optimizer, schedule):
            if step == TWO_RANK_CHECKPOINT_STEP:
                save_checkpoint(os.path.join(out_dir, "checkpoints"), step, dmp, optimizer,
                                {"schedule": schedule.state_dict()})
                state = full_state(dmp, optimizer)
                if context.rank == 0:
                    torch.save(state, os.path.join(out_dir, "state.pt"))

        losses = train_toy(dmp, loader, TWO_RANK_STEPS, optimizer=optimizer,
                           schedule=schedule, on_step=on_step)
        if context.rank == 0:
            torch.save({"losses": losses, "plan": str(dmp.plan)},
                       os.path.join(out_dir, "losses.pt"))
    finally:
        teardown(context)


@pytest.fixture
def context():
    """A one-rank CPU process group (one thread), torn down after the test."""
    from nasrec_torchrec.train.distributed import init_distributed, teardown

    context = init_distributed("cpu", num_threads=1)
    yield context
    teardown(context)


@pytest.fixture(scope="session")
def two_rank_run(tmp_path_factory):
    """Directory of the finished 2-rank job: losses.pt, state.pt, checkpoints/."""
    from toy_training import run_ranks

    out_dir = str(tmp_path_factory.mktemp("two_ranks"))
    run_ranks(2, two_rank_job, out_dir)
    return out_dir
