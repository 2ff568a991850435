"""Shared fixtures of the training tests: a one-rank context, one 2-rank toy run reused by
several tests."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # toy_training, for the 2-rank children

from two_rank_job import two_rank_job  # noqa: E402  (after the sys.path entry)


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
