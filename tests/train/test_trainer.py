"""The trainer: its files, kill-and-resume equality, 2 ranks = 1 rank, both pipelines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from toy_trainer_main import resume_config
from toy_training import read_metrics, run_ranks, small_config, toy_trainer

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.checkpoint import list_checkpoints
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.distributed import init_distributed, teardown

HERE = os.path.dirname(os.path.abspath(__file__))


def test_fit_writes_config_metrics_checkpoints_and_results(context, tmp_path):
    config = small_config(tmp_path, checkpoint_every=3, keep_checkpoints=2, epochs=2)
    results = toy_trainer(config, context).fit()
    metrics = read_metrics(str(tmp_path))
    assert [m["step"] for m in metrics] == list(range(1, 17))  # 2 epochs x 8 batches
    assert {"loss", "lr", "embedding_lr", "samples_per_second"} <= set(metrics[0])
    lrs = [m["lr"] for m in metrics]
    assert lrs == pytest.approx([0.04 * step / 1000 for step in range(1, 17)])  # warm-up
    assert [step for step, _ in list_checkpoints(str(tmp_path / "checkpoints"))] == [15, 16]
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["val"]["rows"] == 200 and 0.0 <= written["val"]["auc"] <= 1.0
    assert written["val"] == results["val"] and written["steps"] == 16
    assert written["samples_per_second"] > 0
    effective = json.loads((tmp_path / "config.json").read_text())
    assert effective["config"]["batch_size"] == 64 and effective["total_steps"] == 16
    assert "fused" in effective["plan"]


def test_a_fresh_run_refuses_an_output_with_checkpoints(context, tmp_path):
    toy_trainer(small_config(tmp_path, max_steps=2), context).fit()
    with pytest.raises(NASRecError, match="--resume"):
        toy_trainer(small_config(tmp_path, max_steps=2), context).fit()
    toy_trainer(small_config(tmp_path, max_steps=3, overwrite=True), context).fit()
    assert [m["step"] for m in read_metrics(str(tmp_path))] == [1, 2, 3]
    assert [s for s, _ in list_checkpoints(str(tmp_path / "checkpoints"))] == [3]


def test_cosine_lr_without_warm_up(context, tmp_path):
    toy_trainer(small_config(tmp_path, max_steps=8, lr_warmup_steps=0, checkpoint_every=0),
                context).fit()
    lrs = [m["lr"] for m in read_metrics(str(tmp_path))]
    assert lrs[0] == 0.04 and lrs == sorted(lrs, reverse=True) and 0 < lrs[-1] < 2e-3


def test_max_steps_and_constant_lr(context, tmp_path):
    config = small_config(tmp_path, max_steps=5, lr_schedule="constant", checkpoint_every=0)
    toy_trainer(config, context).fit()
    metrics = read_metrics(str(tmp_path))
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5]
    assert {m["lr"] for m in metrics} == {0.04}
    assert not os.path.exists(tmp_path / "checkpoints")


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(NASRecError, match="'batch_size'.*divisible"):
        small_config(tmp_path, batch_size=63).validate(world_size=2)
    with pytest.raises(NASRecError, match="'lr_schedule'"):
        small_config(tmp_path, lr_schedule="step").validate()
    with pytest.raises(NASRecError, match="unknown field"):
        TrainConfig.from_dict({"batch": 3})


def test_sparse_dist_pipeline_trains_like_the_base_pipeline(context, tmp_path):
    runs = {}
    for pipeline in ("base", "sparse_dist"):
        config = small_config(tmp_path / pipeline, max_steps=6, pipeline=pipeline,
                              checkpoint_every=0)
        runs[pipeline] = toy_trainer(config, context, supernet=True).fit()
        runs[pipeline]["losses"] = [m["loss"] for m in read_metrics(str(tmp_path / pipeline))]
    assert runs["sparse_dist"]["losses"] == pytest.approx(runs["base"]["losses"], rel=1e-5)
    assert runs["sparse_dist"]["val"]["auc"] == pytest.approx(runs["base"]["val"]["auc"])


def _run_toy(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.run([sys.executable, os.path.join(HERE, "toy_trainer_main.py"), *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_killed_and_resumed_supernet_run_equals_the_uninterrupted_run(context, tmp_path):
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    reference = toy_trainer(resume_config(str(reference_dir), False), context,
                            supernet=True).fit()

    killed = _run_toy(str(resumed_dir), "--supernet", "--kill-after", "8")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # checkpoints every 3 steps: the kill after step 8 loses steps 7 and 8
    assert [s for s, _ in list_checkpoints(str(resumed_dir / "checkpoints"))] == [3, 6]
    assert not (resumed_dir / "results.json").exists()

    resumed = _run_toy(str(resumed_dir), "--supernet", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = read_metrics(str(reference_dir))
    got = read_metrics(str(resumed_dir))
    assert [m["step"] for m in got] == [m["step"] for m in expected] == list(range(1, 17))
    assert [m["loss"] for m in got] == pytest.approx([m["loss"] for m in expected], rel=1e-6)
    assert [m["lr"] for m in got] == pytest.approx([m["lr"] for m in expected], rel=1e-9)
    results = json.loads((resumed_dir / "results.json").read_text())
    assert results["val"]["log_loss"] == pytest.approx(reference["val"]["log_loss"], rel=1e-6)
    assert results["val"]["auc"] == pytest.approx(reference["val"]["auc"], rel=1e-6)


def _two_rank_supernet(output: str) -> None:
    context = init_distributed("cpu", num_threads=1)
    try:
        config = small_config(output, epochs=2, checkpoint_every=0, sharding_type="row_wise")
        toy_trainer(config, context, supernet=True).fit()
    finally:
        teardown(context)


def test_two_rank_supernet_training_equals_one_rank(context, tmp_path):
    run_ranks(2, _two_rank_supernet, str(tmp_path / "two"))
    config = small_config(tmp_path / "one", epochs=2, checkpoint_every=0)
    one = toy_trainer(config, context, supernet=True).fit()
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["world_size"] == 2
    plan = json.loads((tmp_path / "two" / "config.json").read_text())["plan"]
    assert "row_wise" in plan and "table_wise" not in plan  # the hand-written row-wise plan
    one_losses = [m["loss"] for m in read_metrics(str(tmp_path / "one"))]
    two_losses = [m["loss"] for m in read_metrics(str(tmp_path / "two"))]
    assert len(two_losses) == 16
    assert two_losses == pytest.approx(one_losses, rel=1e-4)
    assert two["val"]["rows"] == one["val"]["rows"] == 200
    assert two["val"]["auc"] == pytest.approx(one["val"]["auc"], abs=1e-4)
    assert two["val"]["log_loss"] == pytest.approx(one["val"]["log_loss"], rel=1e-4)
