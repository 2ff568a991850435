"""Log loss and AUC: equal to a scipy/numpy reference, exact across ranks of unequal sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from toy_training import make_batch, run_ranks, toy_dmp, toy_rows, toy_schema

from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.metrics import (
    MetricAccumulator, auc, binary_metrics, evaluate, log_loss)


def reference_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    ranks = rankdata(scores)  # average ranks for ties
    positives = labels.sum()
    negatives = len(labels) - positives
    return (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def reference_log_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_scipy_reference(seed):
    generator = np.random.default_rng(seed)
    labels = (generator.random(501) < 0.3).astype(np.float32)
    logits = (generator.standard_normal(501) + labels).astype(np.float32)
    got = binary_metrics(torch.from_numpy(logits), torch.from_numpy(labels))
    assert got["auc"] == pytest.approx(reference_auc(logits, labels), abs=1e-12)
    assert got["auc"] == pytest.approx(pairwise_auc(logits, labels), abs=1e-12)
    assert got["log_loss"] == pytest.approx(reference_log_loss(logits, labels), rel=1e-9)
    assert got["rows"] == 501
    assert got["positive_rate"] == pytest.approx(labels.mean())


def test_auc_counts_ties_as_one_half():
    generator = np.random.default_rng(3)
    labels = (generator.random(400) < 0.5).astype(np.float32)
    scores = generator.integers(0, 5, 400).astype(np.float32)  # heavy ties
    got = auc(torch.from_numpy(scores), torch.from_numpy(labels))
    assert got == pytest.approx(reference_auc(scores, labels), abs=1e-12)
    assert got == pytest.approx(pairwise_auc(scores, labels), abs=1e-12)
    assert auc(torch.zeros(10), torch.tensor([0.0, 1.0] * 5)) == 0.5


def test_auc_edge_cases():
    assert auc(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, 1.0])) == 1.0
    assert auc(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([0.0, 1.0, 1.0])) == 0.0
    assert math.isnan(auc(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0])))


def test_log_loss_is_stable_for_large_logits():
    value = log_loss(torch.tensor([100.0, -100.0]), torch.tensor([1.0, 0.0]))
    assert value == pytest.approx(0.0, abs=1e-30)
    assert math.isfinite(log_loss(torch.tensor([100.0]), torch.tensor([0.0])))


def test_single_process_accumulator_concatenates_batches():
    accumulator = MetricAccumulator()
    logits, labels = torch.randn(50), (torch.rand(50) < 0.4).float()
    for lo in range(0, 50, 16):
        accumulator.update(logits[lo:lo + 16], labels[lo:lo + 16])
    assert accumulator.compute() == binary_metrics(logits, labels)


def _gather_unequal(out_path: str) -> None:
    context = init_distributed("cpu", num_threads=1)
    try:
        generator = np.random.default_rng(7)
        labels = (generator.random(301) < 0.4).astype(np.float32)
        logits = generator.integers(-3, 4, 301).astype(np.float32)  # ties across ranks
        # rank 0 gets 200 rows in three batches, rank 1 the other 101
        rows = slice(0, 200) if context.rank == 0 else slice(200, 301)
        accumulator = MetricAccumulator()
        local_logits, local_labels = torch.from_numpy(logits[rows]), torch.from_numpy(labels[rows])
        for lo in range(0, len(local_labels), 70):
            accumulator.update(local_logits[lo:lo + 70], local_labels[lo:lo + 70])
        got = accumulator.compute()
        torch.save(got, f"{out_path}.{context.rank}")
        # a sharded model evaluated over uneven batches; rank 1's last batch is empty
        schema = toy_schema()
        dmp = toy_dmp(schema, sharding_types=["table_wise"])
        batches = [_rank_batch(schema, lo, hi, context.rank) for lo, hi in EVAL_BATCHES]
        # and a rank with fewer batches than the other (it replays one, dropping the result)
        fewer = batches if context.rank == 0 else batches[:2]
        torch.save({"sizes": [b.labels.numel() for b in batches],
                    "metrics": evaluate(dmp, batches),
                    "fewer_batches": evaluate(dmp, fewer)}, f"{out_path}.eval.{context.rank}")
    finally:
        teardown(context)


EVAL_BATCHES = ((0, 50), (50, 100), (100, 101))


def _rank_batch(schema, lo, hi, rank, world_size=2):
    """Rank `rank`'s share of global rows [lo, hi), split as the loader splits a batch."""
    dense, ids, labels = toy_rows(schema, 101, seed=3)
    base, extra = divmod(hi - lo, world_size)
    begin = lo + rank * base + min(rank, extra)
    end = begin + base + (1 if rank < extra else 0)
    return make_batch(schema, dense[begin:end], ids[begin:end], labels[begin:end], None)


def test_two_ranks_with_unequal_rows_and_empty_batches_give_the_whole_split_metrics(tmp_path):
    run_ranks(2, _gather_unequal, str(tmp_path / "metrics"))
    generator = np.random.default_rng(7)
    labels = (generator.random(301) < 0.4).astype(np.float32)
    logits = generator.integers(-3, 4, 301).astype(np.float32)
    for rank in range(2):
        got = torch.load(f"{tmp_path / 'metrics'}.{rank}")
        assert got["rows"] == 301
        assert got["auc"] == pytest.approx(reference_auc(logits, labels), abs=1e-12)
        assert got["log_loss"] == pytest.approx(reference_log_loss(logits, labels), rel=1e-9)

    # the sharded model's evaluation equals one rank's over the same 101 rows
    context = init_distributed("cpu", num_threads=1)
    try:
        schema = toy_schema()
        expected = evaluate(toy_dmp(schema), [_rank_batch(schema, lo, hi, 0, world_size=1)
                                              for lo, hi in EVAL_BATCHES])
    finally:
        teardown(context)
    for rank, sizes in ((0, [25, 25, 1]), (1, [25, 25, 0])):
        got = torch.load(f"{tmp_path / 'metrics'}.eval.{rank}")
        assert got["sizes"] == sizes
        assert got["metrics"]["rows"] == 101
        assert got["metrics"]["auc"] == pytest.approx(expected["auc"], abs=1e-9)
        assert got["metrics"]["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-6)
        assert got["fewer_batches"] == got["metrics"]
