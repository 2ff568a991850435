"""Optimizers: fused embedding Adagrad + dense Adagrad, one cosine schedule for both."""

from __future__ import annotations

import copy

import pytest
import torch
from torchrec.distributed.train_pipeline import TrainPipelineBase

from toy_training import ToyBody, ToyLoader, toy_schema

from nasrec_torchrec.embeddings import build_embedding_bag_collection, shard_model
from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.optimizers import build_optimizer, dense_optimizer
from nasrec_torchrec.train.schedules import LRSchedule, cosine_factor


@pytest.fixture(scope="module")
def context():
    context = init_distributed("cpu", num_threads=1)
    yield context
    teardown(context)


def _toy_dmp(schema, embedding_lr=0.1):
    torch.manual_seed(0)
    ebc = build_embedding_bag_collection(schema, 4, embedding_cap=None)
    body = ToyBody(len(schema.dense), len(schema.sparse), 4)
    return shard_model(NASRecModelTrain(NASRecModel(ebc, len(schema.dense), body)),
                       torch.device("cpu"), learning_rate=embedding_lr)


def _snapshot(dmp):
    snapshot = {}
    for key, value in dmp.state_dict().items():
        local = value.local_shards()[0].tensor if hasattr(value, "local_shards") else value
        snapshot[key] = local.detach().clone()
    return snapshot


def test_combined_optimizer_holds_fused_and_dense_groups(context):
    dmp = _toy_dmp(toy_schema())
    optimizer = build_optimizer(dmp, learning_rate=0.04)
    keys = set(optimizer.state_dict()["state"])
    fused = {f"embeddings.{key}" for key in dmp.fused_optimizer.state_dict()["state"]}
    assert len(fused) == len(toy_schema().sparse) and fused <= keys
    assert keys - fused and all(key.startswith("dense.model.body.") for key in keys - fused)
    lrs = sorted(group["lr"] for group in optimizer.param_groups)
    assert lrs[-1] == pytest.approx(0.1) and lrs[0] == pytest.approx(0.04)


@pytest.mark.parametrize("zero_lr", [True, False])
def test_schedule_sets_the_rate_of_the_fused_embedding_update(context, zero_lr):
    schema = toy_schema()
    dmp = _toy_dmp(schema)
    optimizer = build_optimizer(dmp, learning_rate=0.04)
    # a 1-step cosine is at 0 once its step is done
    schedule = LRSchedule(optimizer, total_steps=1)
    if zero_lr:
        schedule.step()
    assert all(lr == (0.0 if zero_lr else lr) for lr in schedule.get_last_lr())
    pipeline = TrainPipelineBase(dmp, optimizer, torch.device("cpu"))
    before = _snapshot(dmp)
    pipeline.progress(iter(ToyLoader(schema, 64, 32)))
    after = _snapshot(dmp)
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    tables = {key for key in before if ".embedding_bags." in key}
    if zero_lr:
        assert changed == set()
    else:
        assert tables <= changed and changed - tables  # embeddings and dense both moved


def test_schedule_state_round_trips(context):
    dmp = _toy_dmp(toy_schema())
    optimizer = build_optimizer(dmp)
    schedule = LRSchedule(optimizer, total_steps=10, warmup_steps=2)
    for _ in range(4):
        schedule.step()
    other = LRSchedule(build_optimizer(_toy_dmp(toy_schema())), total_steps=10,
                           warmup_steps=2)
    other.load_state_dict(schedule.state_dict())
    assert other.get_last_lr() == pytest.approx(schedule.get_last_lr())
    assert schedule.get_last_lr()[0] == pytest.approx(0.1 * cosine_factor(4, 10, 2))


@pytest.mark.parametrize("kind", ["adagrad", "adam"])
def test_the_dense_optimizer_runs_fused_and_steps_as_torchs_foreach(kind):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    reference = copy.deepcopy(model)
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = dense_optimizer(model, learning_rate=0.01, optimizer=kind)
    assert [group["fused"] for group in optimizer.param_groups] == [True]
    make = torch.optim.Adagrad if kind == "adagrad" else torch.optim.Adam
    foreach = make(reference.parameters(), lr=0.01, eps=1e-8, foreach=True)
    x = torch.randn(32, 6)
    for _ in range(3):
        for net, opt in ((model, optimizer), (reference, foreach)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for ours, theirs, before in zip(model.parameters(), reference.parameters(), initial):
        assert not torch.equal(ours, before)
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
