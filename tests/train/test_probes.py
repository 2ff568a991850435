"""Probe subnets of `train-supernet`: a record per epoch in metrics.jsonl, equal to the
materialized subnets scored by hand, no effect on the training, resumable, on 2 ranks."""

from __future__ import annotations

import logging
import os
import shutil

import pytest
import torch
from toy_training import read_metrics, run_ranks

from nasrec_torchrec.artifacts import PROBES_FILE, read_json, read_jsonl
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space import Architecture, get_space, sample_probes
from nasrec_torchrec.stages.supernet import SupernetRun, train_supernet
from nasrec_torchrec.train.checkpoint import step_directory
from nasrec_torchrec.train.config import TrainConfig

STEPS_PER_EPOCH = 7  # 960 training rows, batch 128
PROBE_ROWS = 100  # of 120 val rows


@pytest.fixture(scope="module")
def small_criteo(tmp_path_factory) -> str:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("data") / "criteo")
    write_synthetic("criteo", 1200, output, seed=0, row_group_rows=1000)
    return output


def _run(data: str, output: str, probes: int = 3, **train: object) -> SupernetRun:
    settings = dict(data=data, output=output, batch_size=128, eval_batch_size=512,
                    embedding_cap=2000, epochs=2, checkpoint_every=STEPS_PER_EPOCH,
                    log_every=1, progress_bar=False, threads=1, device="cpu")
    settings.update(train)
    return SupernetRun(space="nasrec-small", probe_subnets=probes, probe_rows=PROBE_ROWS,
                       train=TrainConfig(**settings))  # type: ignore[arg-type]


def _steps(output: str) -> list[dict]:
    return [record for record in read_metrics(output) if "loss" in record]


def _probes(output: str) -> list[dict]:
    return [record for record in read_metrics(output) if "probes" in record]


@pytest.fixture(scope="module")
def runs(small_criteo, tmp_path_factory) -> dict[str, str]:
    """The same supernet run with 3 probes and without."""
    root = tmp_path_factory.mktemp("runs")
    outputs = {"on": str(root / "on"), "off": str(root / "off")}
    train_supernet(_run(small_criteo, outputs["on"]))
    train_supernet(_run(small_criteo, outputs["off"], probes=0))
    return outputs


def test_a_probe_record_follows_every_epoch(runs):
    records = _probes(runs["on"])
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 7), (2, 14)]
    for record in records:
        assert record["split"] == "val" and record["rows"] == PROBE_ROWS
        assert [p["probe"] for p in record["probes"]] == [0, 1, 2]
        losses = [p["log_loss"] for p in record["probes"]]
        assert record["probe_mean_log_loss"] == pytest.approx(sum(losses) / 3, rel=1e-12)
        assert all(0.0 < p["auc"] < 1.0 for p in record["probes"])
    assert records[0]["probes"] != records[1]["probes"]  # the weights moved
    written = read_jsonl(f"{runs['on']}/{PROBES_FILE}")
    assert [Architecture.from_dict(r["architecture"]) for r in written] == sample_probes(
        get_space("nasrec-small"), 3, seed=0)


def test_probes_leave_the_training_unchanged(runs):
    on, off = _steps(runs["on"]), _steps(runs["off"])
    assert len(on) == 2 * STEPS_PER_EPOCH
    assert [r["loss"] for r in on] == [r["loss"] for r in off]  # bit for bit
    assert read_json(f"{runs['on']}/results.json")["val"] == \
        read_json(f"{runs['off']}/results.json")["val"]


def test_no_probes_write_no_probe_record(runs):
    assert _probes(runs["off"]) == []
    assert not os.path.exists(f"{runs['off']}/{PROBES_FILE}")


@torch.no_grad()
def test_a_probe_scores_as_its_materialized_subnet_on_the_same_rows(runs, small_criteo):
    from nasrec_torchrec.data.loader import ParquetBatchLoader
    from nasrec_torchrec.nn.networks import NASRecNet
    from nasrec_torchrec.search.loading import load_supernet
    from nasrec_torchrec.train.metrics import binary_metrics

    loaded = load_supernet(runs["on"])  # the last checkpoint: step 14, the last record's
    assert loaded.step == 2 * STEPS_PER_EPOCH
    (batch,) = list(ParquetBatchLoader(small_criteo, "val", 512, embedding_cap=2000))
    loaded.model.eval()
    sparse = loaded.model.embed(batch.sparse_features)[:PROBE_ROWS]
    dense, labels = batch.dense_features[:PROBE_ROWS], batch.labels[:PROBE_ROWS]
    recorded = _probes(runs["on"])[-1]["probes"]
    for index, probe in enumerate(sample_probes(get_space("nasrec-small"), 3, seed=0)):
        net = NASRecNet.from_supernet(loaded.supernet, probe).eval()
        metrics = binary_metrics(net(dense, sparse), labels)
        assert recorded[index]["log_loss"] == pytest.approx(metrics["log_loss"], rel=1e-5)
        assert recorded[index]["auc"] == pytest.approx(metrics["auc"], abs=1e-6)


def test_a_run_resumed_at_an_epoch_end_records_each_epoch_once(runs, small_criteo, tmp_path,
                                                                caplog):
    resumed = str(tmp_path / "resumed")
    shutil.copytree(runs["on"], resumed)
    shutil.rmtree(step_directory(f"{resumed}/checkpoints", 2 * STEPS_PER_EPOCH))
    with caplog.at_level(logging.INFO, logger="nasrec_torchrec.train.probes"):
        train_supernet(_run(small_criteo, resumed, resume=True))
    assert [r["probes"] for r in _probes(resumed)] == [r["probes"] for r in _probes(runs["on"])]
    assert [r["loss"] for r in _steps(resumed)] == [r["loss"] for r in _steps(runs["on"])]
    (line,) = [r.getMessage() for r in caplog.records if "probe subnets" in r.getMessage()]
    first, second = (r["probe_mean_log_loss"] for r in _probes(runs["on"]))
    assert line.startswith("epoch 2: 3 probe subnets on 100 val rows: mean log loss")
    assert f"({second - first:+.5f})" in line  # the change from the epoch before the resume


def _two_rank_supernet(data: str, output: str) -> None:
    train_supernet(_run(data, output))


def test_two_ranks_record_the_one_rank_probes(runs, small_criteo, tmp_path):
    two = str(tmp_path / "two")
    run_ranks(2, _two_rank_supernet, small_criteo, two)
    one_records, two_records = _probes(runs["on"]), _probes(two)
    assert [r["step"] for r in two_records] == [7, 14]
    for one, other in zip(one_records, two_records):
        assert other["rows"] == PROBE_ROWS
        for a, b in zip(one["probes"], other["probes"]):
            assert b["log_loss"] == pytest.approx(a["log_loss"], rel=1e-4)
            assert b["auc"] == pytest.approx(a["auc"], abs=1e-4)


@pytest.mark.parametrize("field, flag", [("probe_subnets", "--probe-subnets"),
                                         ("probe_rows", "--probe-rows")])
def test_negative_probe_settings_are_refused(small_criteo, tmp_path, field, flag):
    run = _run(small_criteo, str(tmp_path / "out"))
    setattr(run, field, -1)
    with pytest.raises(NASRecError, match=f"'{field}' \\({flag}\\): -1 must be at least 0"):
        train_supernet(run)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def batch_norm_runs(small_criteo, tmp_path_factory) -> dict[str, str]:
    """A BatchNorm supernet run with 2 probes (recalibrated on 3 batches) and without."""
    root = tmp_path_factory.mktemp("bn")
    outputs = {"on": str(root / "on"), "off": str(root / "off")}
    for name, probes in (("on", 2), ("off", 0)):
        run = _run(small_criteo, outputs[name], probes=probes)
        run.batch_norm, run.probe_recalibration_batches = True, 3
        train_supernet(run)
    return outputs


def test_batch_norm_probes_leave_the_training_and_the_supernet_unchanged(batch_norm_runs):
    on, off = _steps(batch_norm_runs["on"]), _steps(batch_norm_runs["off"])
    assert [r["loss"] for r in on] == [r["loss"] for r in off]  # bit for bit
    assert read_json(f"{batch_norm_runs['on']}/results.json")["val"] == \
        read_json(f"{batch_norm_runs['off']}/results.json")["val"]  # same running stats


@torch.no_grad()
def test_a_batch_norm_probe_scores_as_its_recalibrated_subnet(batch_norm_runs, small_criteo):
    from nasrec_torchrec.data.loader import ParquetBatchLoader
    from nasrec_torchrec.nn.batch_norm import recalibrate_batch_norm
    from nasrec_torchrec.nn.networks import NASRecNet
    from nasrec_torchrec.search.loading import load_supernet
    from nasrec_torchrec.train.metrics import binary_metrics

    loaded = load_supernet(batch_norm_runs["on"])
    assert loaded.supernet.batch_norm and loaded.step == 2 * STEPS_PER_EPOCH
    embed = loaded.model.embed
    train = [(b.dense_features, embed(b.sparse_features)) for b in ParquetBatchLoader(
        small_criteo, "train", 128, embedding_cap=2000, drop_last=True)][:3]
    (batch,) = list(ParquetBatchLoader(small_criteo, "val", 512, embedding_cap=2000))
    sparse = embed(batch.sparse_features)[:PROBE_ROWS]
    dense, labels = batch.dense_features[:PROBE_ROWS], batch.labels[:PROBE_ROWS]
    recorded = _probes(batch_norm_runs["on"])[-1]["probes"]
    for index, probe in enumerate(sample_probes(get_space("nasrec-small"), 2, seed=0)):
        net = NASRecNet.from_supernet(loaded.supernet, probe)
        stale = binary_metrics(net.eval()(dense, sparse), labels)
        recalibrate_batch_norm(net, train)
        metrics = binary_metrics(net(dense, sparse), labels)
        assert recorded[index]["log_loss"] == pytest.approx(metrics["log_loss"], rel=1e-5)
        assert recorded[index]["auc"] == pytest.approx(metrics["auc"], abs=1e-6)
        assert stale["log_loss"] != pytest.approx(metrics["log_loss"], rel=1e-5)
