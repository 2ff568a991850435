"""Subnet scoring: equals a hand-written head fine-tune; never touches the supernet."""

from __future__ import annotations

import json
import os
import random

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_thread")

from nasrec_torchrec.data.loader import ParquetBatchLoader  # noqa: E402
from nasrec_torchrec.data.schema import Schema  # noqa: E402
from nasrec_torchrec.embeddings import build_embedding_bag_collection  # noqa: E402
from nasrec_torchrec.errors import NASRecError  # noqa: E402
from nasrec_torchrec.nn.model import NASRecModel  # noqa: E402
from nasrec_torchrec.nn.networks import NASRecNet, Supernet  # noqa: E402
from nasrec_torchrec.search.loading import load_supernet  # noqa: E402
from nasrec_torchrec.search.scoring import ScoringConfig, SubnetScorer  # noqa: E402
from nasrec_torchrec.space import SearchSpace, sample_architecture, sample_full  # noqa: E402
from nasrec_torchrec.train.metrics import binary_metrics  # noqa: E402
from nasrec_torchrec.train.schedules import LRSchedule  # noqa: E402

from search_helpers import TINY_SPACE  # noqa: E402

CAP = 300
STEPS = 6
BATCH = 64


@pytest.fixture(scope="module")
def tiny_model(synthetic_criteo):
    torch.manual_seed(0)
    schema = Schema.load(synthetic_criteo)
    space = SearchSpace.from_dict(TINY_SPACE)
    ebc = build_embedding_bag_collection(schema, 16, CAP, device="cpu")
    supernet = Supernet(space, len(schema.dense), len(schema.sparse))
    model = NASRecModel(ebc, len(schema.dense), supernet)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _config(**changes) -> ScoringConfig:
    return ScoringConfig(**{"finetune_steps": STEPS, "batch_size": BATCH, "seed": 3,
                            "eval_batch_size": 256, **changes})


def _manual_head_finetune(model, data, architecture, optimizer_name="adagrad"):
    """The reference: the standalone subnet, everything frozen but the head, trained by hand
    with torch's Adagrad or Adam."""
    net = NASRecNet.from_supernet(model.body, architecture)
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    head = list(net.head.parameters())
    for parameter in head:
        parameter.requires_grad_(True)
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(head, lr=0.04, betas=(0.8, 0.99), eps=1e-8)
    else:
        optimizer = torch.optim.Adagrad(head, lr=0.04, eps=1e-8)
    schedule = LRSchedule(optimizer, STEPS)
    loader = ParquetBatchLoader(data, "train", BATCH, embedding_cap=CAP, shuffle=True, seed=3,
                                drop_last=True)
    for step, batch in zip(range(STEPS), loader):
        optimizer.zero_grad()
        with torch.no_grad():
            sparse = model.embed(batch.sparse_features)
        logits = net(batch.dense_features, sparse)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.labels.float())
        loss.backward()
        optimizer.step()
        schedule.step()
    logits, labels = [], []
    with torch.no_grad():
        for batch in ParquetBatchLoader(data, "val", 100, embedding_cap=CAP):
            logits.append(net(batch.dense_features, model.embed(batch.sparse_features)))
            labels.append(batch.labels.float())
    return binary_metrics(torch.cat(logits), torch.cat(labels))


@pytest.mark.parametrize("optimizer", ["adagrad", "adam"])
def test_head_scoring_equals_a_manual_head_finetune(tiny_model, synthetic_criteo, optimizer):
    space = tiny_model.body.space
    scorer = SubnetScorer(tiny_model, synthetic_criteo, CAP,
                          _config(optimizer=optimizer, betas=(0.8, 0.99)))
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    for seed in range(2):
        architecture = sample_architecture(space, random.Random(seed))
        expected = _manual_head_finetune(tiny_model, synthetic_criteo, architecture, optimizer)
        result = scorer.score(architecture)
        assert result["finetune"] == "head" and result["finetune_steps"] == STEPS
        assert result["rows"] == expected["rows"] == 600
        assert result["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-6, abs=1e-7)
        assert result["auc"] == pytest.approx(expected["auc"], abs=1e-6)
        assert result["mflops"] > 0 and result["params"] > 0
    # the supernet is never changed by scoring
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_scoring_is_deterministic_and_modes_differ(tiny_model, synthetic_criteo):
    space = tiny_model.body.space
    architecture = sample_architecture(space, random.Random(7))
    first = SubnetScorer(tiny_model, synthetic_criteo, CAP, _config()).score(architecture)
    again = SubnetScorer(tiny_model, synthetic_criteo, CAP, _config()).score(architecture)
    assert (again["log_loss"], again["auc"]) == (first["log_loss"], first["auc"])
    uncached = SubnetScorer(tiny_model, synthetic_criteo, CAP,
                            _config(cache_inputs=False)).score(architecture)
    assert uncached["log_loss"] == pytest.approx(first["log_loss"], rel=1e-9)
    # over the memory limit: streamed; the body on chunks of 2 batches instead of all 6
    streamed = SubnetScorer(tiny_model, synthetic_criteo, CAP,
                            _config(cache_limit_mb=0, body_batch_size=2 * BATCH + 1))
    assert streamed.prepare() == {"train_rows": STEPS * BATCH, "eval_rows": 600}
    result = streamed.score(architecture)
    assert result["log_loss"] == pytest.approx(first["log_loss"], rel=1e-6)
    assert result["auc"] == pytest.approx(first["auc"], abs=1e-6)
    scorer = SubnetScorer(tiny_model, synthetic_criteo, CAP, _config())
    none = scorer.score(architecture, finetune="none")
    full = scorer.score(architecture, finetune="full")
    assert none["finetune_steps"] == 0
    assert len({round(r["log_loss"], 9) for r in (first, none, full)}) == 3
    # "none" is the supernet itself on the path
    direct = scorer.evaluate(lambda d, s: tiny_model.body(d, s, architecture))
    assert none["log_loss"] == pytest.approx(direct["log_loss"], rel=1e-6)


def test_bad_finetune_mode_is_a_user_error(tiny_model, synthetic_criteo):
    with pytest.raises(NASRecError, match="finetune"):
        SubnetScorer(tiny_model, synthetic_criteo, CAP, _config(finetune="last"))
    with pytest.raises(NASRecError, match="'optimizer'"):
        SubnetScorer(tiny_model, synthetic_criteo, CAP, _config(optimizer="sgd"))


def test_full_finetune_with_adam_differs_from_adagrad(tiny_model, synthetic_criteo):
    architecture = sample_architecture(tiny_model.body.space, random.Random(7))
    scores = {name: SubnetScorer(tiny_model, synthetic_criteo, CAP, _config(optimizer=name))
              .score(architecture, finetune="full")["log_loss"] for name in ("adagrad", "adam")}
    assert scores["adagrad"] != pytest.approx(scores["adam"], rel=1e-6)


def test_the_finetune_optimizer_follows_the_supernet_unless_set(supernet_run,
                                                                adam_supernet_run, tmp_path):
    from nasrec_torchrec.search.run import load_scorer
    from nasrec_torchrec.search.settings import ScoringRun

    def scoring(run_dir: str, choice: str) -> ScoringConfig:
        run = ScoringRun(supernet=run_dir, output=str(tmp_path), finetune_optimizer=choice)
        return load_scorer(run)[1].config

    assert ScoringRun.finetune_optimizer == "auto"
    assert scoring(supernet_run, "auto").optimizer == "adagrad"
    adam = scoring(adam_supernet_run, "auto")
    assert (adam.optimizer, adam.betas) == ("adam", (0.9, 0.999))
    assert scoring(adam_supernet_run, "adagrad").optimizer == "adagrad"
    assert scoring(supernet_run, "adam").optimizer == "adam"


def test_load_supernet_reproduces_the_trained_supernet(supernet_run):
    loaded = load_supernet(supernet_run)
    results = json.loads(open(os.path.join(supernet_run, "results.json")).read())
    space = loaded.supernet.space
    full_path = sample_full(space, random.Random(loaded.config["seed"]))
    scorer = SubnetScorer(loaded.model, loaded.data, loaded.embedding_cap,
                          _config(finetune_steps=0))
    metrics = scorer.evaluate(lambda d, s: loaded.supernet(d, s, full_path))
    assert loaded.step == 4 and loaded.embedding_cap == 500
    assert metrics["rows"] == results["val"]["rows"]
    assert metrics["log_loss"] == pytest.approx(results["val"]["log_loss"], rel=1e-5)
    assert metrics["auc"] == pytest.approx(results["val"]["auc"], abs=1e-6)


def test_load_supernet_rejects_a_non_supernet_directory(tmp_path):
    with pytest.raises(NASRecError, match="config.json"):
        load_supernet(str(tmp_path))


def test_bf16_scoring_is_close_to_fp32_in_every_mode(tiny_model, synthetic_criteo):
    from nasrec_torchrec.analysis.host import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions")
    architecture = sample_architecture(tiny_model.body.space, random.Random(7))
    for mode in ("head", "full", "none"):
        fp32 = SubnetScorer(tiny_model, synthetic_criteo, CAP,
                            _config(finetune=mode)).score(architecture)
        bf16 = SubnetScorer(tiny_model, synthetic_criteo, CAP,
                            _config(finetune=mode, precision="bf16")).score(architecture)
        assert bf16["log_loss"] != fp32["log_loss"]  # the body did run in bf16
        assert bf16["log_loss"] == pytest.approx(fp32["log_loss"], rel=0.02)
    with pytest.raises(NASRecError, match="'precision'"):
        SubnetScorer(tiny_model, synthetic_criteo, CAP, _config(precision="fp16"))
