"""The 2-rank toy job several training tests share, in a module of its own: the spawned
children import it by this name (a function of a `conftest` module can resolve to another
directory's `conftest` in a child)."""

from __future__ import annotations

import os

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
