"""2 gloo ranks train like 1 rank given the same global batch."""

from __future__ import annotations

import os

import pytest
import torch
from two_rank_job import GLOBAL_BATCH, ROWS, TWO_RANK_STEPS
from toy_training import ToyLoader, toy_dmp, toy_schema, train_toy

from nasrec_torchrec.train.distributed import init_distributed, teardown


def test_two_ranks_give_the_one_rank_losses(two_rank_run):
    context = init_distributed("cpu", num_threads=1)
    try:
        schema = toy_schema()
        dmp = toy_dmp(schema)  # the planner's own (1-rank) plan
        losses = train_toy(dmp, ToyLoader(schema, ROWS, GLOBAL_BATCH), TWO_RANK_STEPS)
    finally:
        teardown(context)
    two_rank = torch.load(os.path.join(two_rank_run, "losses.pt"))
    assert "table_wise" in two_rank["plan"]
    assert losses == pytest.approx(two_rank["losses"], rel=1e-4)
