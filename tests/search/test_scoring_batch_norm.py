"""Scoring subnets of a BatchNorm supernet (`train-supernet --batch-norm`): each materialised
subnet's BatchNorm statistics are re-estimated on the first fine-tuning batches first."""

from __future__ import annotations

import argparse
import itertools
import json
import random

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")

import torch  # noqa: E402

from nasrec_torchrec.artifacts import read_json  # noqa: E402
from nasrec_torchrec.commands import search  # noqa: E402
from nasrec_torchrec.nn.batch_norm import recalibrate_batch_norm  # noqa: E402
from nasrec_torchrec.nn.networks import NASRecNet  # noqa: E402
from nasrec_torchrec.search.run import load_scorer  # noqa: E402
from nasrec_torchrec.search.settings import SearchRun  # noqa: E402
from nasrec_torchrec.space import Architecture, sample_any_op_any_conn  # noqa: E402
from nasrec_torchrec.train.metrics import binary_metrics  # noqa: E402

FLAGS = ["--finetune-steps", "3", "--finetune-batch-size", "64", "--recalibration-batches",
         "2", "--threads", "1", "--no-progress"]


def _scorer(supernet: str, output: str, finetune: str = "head"):
    run = SearchRun(supernet=supernet, output=output, finetune_steps=3, finetune_batch_size=64,
                    recalibration_batches=2)
    return load_scorer(run, finetune)


def test_a_batch_norm_supernet_run_records_it_and_loads_with_it(batch_norm_supernet_run,
                                                                 tmp_path):
    config = read_json(f"{batch_norm_supernet_run}/config.json")["config"]
    assert config["model"]["batch_norm"] is True
    loaded, scorer = _scorer(batch_norm_supernet_run, str(tmp_path))
    assert loaded.supernet.batch_norm
    assert scorer.config.recalibration_batches == 2


def test_search_on_a_batch_norm_supernet_scores_recalibrated_subnets(batch_norm_supernet_run,
                                                                     tmp_path):
    output = tmp_path / "search"
    parser = argparse.ArgumentParser()
    search.add_arguments(parser)
    assert search.run(parser.parse_args([
        "--supernet", batch_norm_supernet_run, "--output", str(output), "--method", "random",
        "--budget", "3", *FLAGS])) == 0
    records = [json.loads(line) for line in
               (output / "candidates.jsonl").read_text().splitlines()]
    assert len(records) == 3
    assert json.loads((output / "search.json").read_text())["scoring"][
        "recalibration_batches"] == 2
    _, scorer = _scorer(batch_norm_supernet_run, str(tmp_path / "again"))
    for record in records:  # the head fine-tune of the recalibrated subnet, as the search did
        architecture = Architecture.from_dict(record["architecture"])
        again = scorer.score(architecture)
        assert again["log_loss"] == pytest.approx(record["log_loss"], rel=1e-6)


@torch.no_grad()
def test_a_score_is_the_recalibrated_subnet_scored_by_hand(batch_norm_supernet_run, tmp_path):
    loaded, scorer = _scorer(batch_norm_supernet_run, str(tmp_path), finetune="none")
    architecture = sample_any_op_any_conn(loaded.supernet.space, random.Random(1))
    net = NASRecNet.from_supernet(loaded.supernet, architecture)
    batches = [(dense, sparse) for dense, sparse, _ in
               itertools.islice(scorer.train_chunks(64), 2)]
    stale = binary_metrics(*_logits_and_labels(net.eval(), scorer))
    recalibrate_batch_norm(net, batches)
    expected = binary_metrics(*_logits_and_labels(net, scorer))
    scored = scorer.score(architecture)
    assert scored["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-6)
    assert scored["auc"] == pytest.approx(expected["auc"], abs=1e-9)
    assert scored["log_loss"] != pytest.approx(stale["log_loss"], rel=1e-6)


def _logits_and_labels(net, scorer):
    logits, labels = [], []
    for dense, sparse, batch_labels in scorer.eval_chunks():
        logits.append(net(dense, sparse))
        labels.append(batch_labels)
    return torch.cat(logits), torch.cat(labels)


@torch.no_grad()
def test_a_head_score_fine_tunes_on_the_recalibrated_frozen_body(batch_norm_supernet_run,
                                                                 tmp_path):
    loaded, scorer = _scorer(batch_norm_supernet_run, str(tmp_path))
    architecture = sample_any_op_any_conn(loaded.supernet.space, random.Random(2))
    net = NASRecNet.from_supernet(loaded.supernet, architecture)
    recalibrate_batch_norm(net, [(dense, sparse) for dense, sparse, _ in
                                 itertools.islice(scorer.train_chunks(64), 2)])
    statistics = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    assert len(scorer.finetune(net, "head")) == 3  # body in eval mode: statistics kept
    assert all(torch.equal(net.state_dict()[k], v) for k, v in statistics.items())
    expected = binary_metrics(*_logits_and_labels(net.eval(), scorer))
    assert scorer.score(architecture)["log_loss"] == pytest.approx(expected["log_loss"],
                                                                   rel=1e-6)
