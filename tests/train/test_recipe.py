"""The training recipe options: pooled-embedding L2, Adam, early stopping (one rank, toy data)."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn
from toy_training import ToyBody, ToyLoader, ToyPathSampler, ToySupernet, read_metrics
from toy_training import small_config as toy_small_config
from toy_training import toy_schema, toy_trainer

from nasrec_torchrec.embeddings import (
    build_embedding_bag_collection, embedding_table_names, init_embedding_weights, shard_model)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.train.checkpoint import list_checkpoints
from nasrec_torchrec.train.config import TrainConfig


# the recipe tests train at a constant rate unless they say otherwise
small_config = functools.partial(toy_small_config, lr_schedule="constant")


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The whole table of a one-rank (sharded or plain) state tensor."""
    if hasattr(tensor, "local_shards"):
        return tensor.local_shards()[0].tensor
    return tensor


class BiasBody(nn.Module):
    """Logits = a bias: the embeddings get gradient from the L2 term only."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(dense.size(0))


def test_embedding_l2_gradient_through_the_fused_adagrad(context):
    """Adagrad's state after one step is g^2: g must be 2*lambda/B * (the pooled bag's sum)
    for every id of the bag, summed over the bags, through the sharded fused lookup."""
    schema, lam, batch_size = toy_schema(), 0.3, 16
    ebc = build_embedding_bag_collection(schema, 4, None)
    model = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), BiasBody()), embedding_l2=lam)
    dmp = shard_model(model, torch.device("cpu"), learning_rate=0.1)
    init_embedding_weights(dmp, 0)
    tables = {name: _local(dmp.state_dict()[key]).clone()
              for key, name in embedding_table_names(dmp).items()}
    batch = next(iter(ToyLoader(schema, 64, batch_size)))
    total, (bce, _, _) = dmp(batch)
    total.backward()

    expected = {name: torch.zeros_like(weight) for name, weight in tables.items()}
    penalty = 0.0
    features = batch.sparse_features.to_dict()
    for name in schema.sparse_names:
        weight, grad = tables[f"t_{name}"], expected[f"t_{name}"]
        for ids in features[name].to_dense():
            pooled = weight[ids].sum(dim=0)
            penalty += float(pooled.pow(2).sum())
            for row in ids.tolist():
                grad[row] += 2 * lam / batch_size * pooled
    assert float(total - bce) == pytest.approx(lam * penalty / batch_size, rel=1e-5)
    state = dmp.fused_optimizer.state_dict()["state"]
    for key, name in embedding_table_names(dmp).items():
        (momentum,) = [v for k, v in state[key].items() if k.endswith("momentum1")]
        torch.testing.assert_close(_local(momentum), expected[name].pow(2), rtol=1e-4,
                                   atol=1e-12)
    assert any(g.abs().sum() > 0 for g in expected.values())


def _reference_adam_run(trainer, initial: dict[str, torch.Tensor], config: TrainConfig,
                        steps: int, supernet: bool = False) -> dict[str, torch.Tensor]:
    """The same model unsharded, trained by plain torch.optim.Adam on the same batches
    (`supernet`: the `ToySupernet` on the `ToyPathSampler`'s paths; the branch a step leaves
    unused has no gradient, so torch Adam leaves it and its state alone)."""
    schema = trainer.schema
    ebc = build_embedding_bag_collection(schema, config.embedding_dim, None).to_empty(
        device="cpu")
    dims = (len(schema.dense), len(schema.sparse), config.embedding_dim)
    body = ToySupernet(*dims) if supernet else ToyBody(*dims)
    paths = ToyPathSampler(config.seed)
    model = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), body))
    model.load_state_dict(initial)
    tables = [p for n, p in model.named_parameters() if "embedding_bags" in n]
    dense = [p for n, p in model.named_parameters() if "embedding_bags" not in n]
    optimizer = torch.optim.Adam(
        [{"params": tables, "lr": config.embedding_learning_rate,
          "weight_decay": config.embedding_weight_decay}, {"params": dense}],
        lr=config.learning_rate, betas=config.betas, eps=config.eps)
    loader = ToyLoader(schema, 512, config.batch_size, seed=config.seed)
    for step, batch in zip(range(steps), loader):
        if supernet:
            body.set_architecture(paths.next_path(step))
        optimizer.zero_grad()
        loss, _ = model(batch)
        loss.backward()
        optimizer.step()
    return {key: value.detach() for key, value in model.state_dict().items()}


@pytest.mark.parametrize("supernet", [False, True])
def test_adam_trains_tables_and_dense_like_torch_adam(context, tmp_path, supernet):
    config = small_config(tmp_path, optimizer="adam", learning_rate=0.01,
                          embedding_learning_rate=0.05, embedding_weight_decay=0.1,
                          max_steps=5 if supernet else 3, checkpoint_every=0,
                          eval_split="")
    trainer = toy_trainer(config, context, supernet=supernet)
    initial = {key: _local(value).detach().clone()
               for key, value in trainer.dmp.state_dict().items()}
    trainer.fit()
    expected = _reference_adam_run(trainer, initial, config, config.max_steps, supernet)
    got = {key: _local(value) for key, value in trainer.dmp.state_dict().items()}
    assert set(got) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6, msg=key)
    table = "model.embedding_bag_collection.embedding_bags.t_c2.weight"
    assert not torch.equal(got[table], initial[table])
    names = trainer.optimizer.state_dict()["state"]
    assert any("t_c2" in key and "exp_avg_sq" in str(value.keys())
               for key, value in names.items())


class _Interrupt(Exception):
    pass


def test_adam_run_interrupted_and_resumed_equals_the_uninterrupted_run(context, tmp_path):
    settings = dict(optimizer="adam", learning_rate=0.01, embedding_learning_rate=0.02,
                    embedding_weight_decay=0.05, checkpoint_every=3, epochs=2,
                    lr_schedule="cosine")
    reference = toy_trainer(small_config(tmp_path / "a", **settings), context).fit()

    def interrupt(trainer) -> None:
        if trainer.step == 8:
            raise _Interrupt()

    with pytest.raises(_Interrupt):
        toy_trainer(small_config(tmp_path / "b", **settings), context,
                    callbacks=[interrupt]).fit()
    resumed = toy_trainer(small_config(tmp_path / "b", resume=True, **settings), context).fit()
    expected, got = read_metrics(str(tmp_path / "a")), read_metrics(str(tmp_path / "b"))
    assert [m["step"] for m in got] == list(range(1, 17))
    assert [m["loss"] for m in got] == pytest.approx([m["loss"] for m in expected], rel=1e-6)
    assert resumed["val"]["log_loss"] == pytest.approx(reference["val"]["log_loss"], rel=1e-6)


class ScriptedTrainer:
    """Wraps `toy_trainer`'s evaluate with scripted per-epoch AUCs (the weights still train)."""

    def __init__(self, aucs: list[float]) -> None:
        self.aucs = aucs
        self.calls = 0

    def __call__(self, loader=None) -> dict[str, float]:
        auc = self.aucs[self.calls]
        self.calls += 1
        return {"auc": auc, "log_loss": 1.0 - auc, "rows": 200, "positive_rate": 0.5}


def test_early_stopping_keeps_the_best_epoch(context, tmp_path):
    config = small_config(tmp_path, epochs=8, patience=2, lr_plateau_factor=0.5,
                          checkpoint_every=0)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(trainer) -> None:
        if trainer.step % trainer.steps_per_epoch == 0:
            snapshots[trainer.step] = {k: _local(v).detach().clone()
                                       for k, v in trainer.dmp.state_dict().items()}

    trainer = toy_trainer(config, context, callbacks=[snapshot])
    trainer.evaluate = ScriptedTrainer([0.60, 0.70, 0.65, 0.69, 0.99])  # type: ignore
    results = trainer.fit()
    # best epoch 2; epochs 3 and 4 do not improve: stop after epoch 4 (step 32 of 64)
    assert results["steps"] == 32 and results["best_epoch"] == 2
    assert results["train_samples"] == 32 * 64 and results["samples_per_second"] > 0
    assert results["val"]["auc"] == 0.70
    record = results["early_stopping"]
    assert [e["val"]["auc"] for e in record["epochs"]] == [0.60, 0.70, 0.65, 0.69]
    assert record["stopped"] and record["monitor"] == "auc"
    assert json.loads((tmp_path / "early_stopping.json").read_text())["best_epoch"] == 2
    assert [s for s, _ in list_checkpoints(str(tmp_path / "checkpoints"))] == [16]
    for key, value in trainer.dmp.state_dict().items():
        torch.testing.assert_close(_local(value), snapshots[16][key], msg=key)
    # the rate halves after each epoch without improvement (epochs 3 and 4)
    lrs = [m["lr"] for m in read_metrics(str(tmp_path))]
    assert lrs[:24] == [0.04] * 24 and lrs[24:32] == pytest.approx([0.02] * 8)
    assert json.loads((tmp_path / "results.json").read_text())["best_epoch"] == 2


def test_early_stopping_on_log_loss_and_errors(context, tmp_path):
    config = small_config(tmp_path, epochs=3, patience=1, monitor="log_loss",
                          checkpoint_every=0)
    trainer = toy_trainer(config, context)
    trainer.evaluate = ScriptedTrainer([0.5, 0.3, 0.9])  # type: ignore  # loss 0.5, 0.7, 0.1
    results = trainer.fit()
    assert results["best_epoch"] == 1 and results["steps"] == 16
    with pytest.raises(NASRecError, match="patience"):
        small_config(tmp_path, patience=0).validate()
    with pytest.raises(NASRecError, match="embedding_weight_decay"):
        small_config(tmp_path, embedding_weight_decay=0.1).validate()


def test_config_round_trips_the_new_fields(tmp_path):
    config = small_config(tmp_path, optimizer="adam", betas=(0.8, 0.99), embedding_l2=0.01,
                          patience=3, monitor="log_loss")
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_train_wrapper_without_l2_is_the_plain_loss():
    schema = toy_schema()
    ebc = build_embedding_bag_collection(schema, 4, None).to_empty(device="cpu")
    for table in ebc.embedding_bags.values():  # to_empty leaves every table uninitialised
        nn.init.uniform_(table.weight)
    body = ToyBody(len(schema.dense), len(schema.sparse), 4)
    model = NASRecModel(ebc, len(schema.dense), body)
    batch = next(iter(ToyLoader(schema, 64, 16)))
    loss, (bce, _, _) = NASRecModelTrain(model, embedding_l2=0.0)(batch)
    plain = nn.functional.binary_cross_entropy_with_logits(
        model(batch.dense_features, batch.sparse_features), batch.labels.float())
    assert torch.equal(loss, plain) and torch.equal(bce, plain)
    penalised, (bce, _, _) = NASRecModelTrain(model, embedding_l2=0.5)(batch)
    assert torch.equal(bce, plain) and float(penalised) > float(plain)


def test_normal_embedding_init_is_seeded_and_scaled(context, tmp_path):
    first = toy_trainer(small_config(tmp_path / "a", embedding_init_std=0.01), context)
    second = toy_trainer(small_config(tmp_path / "b", embedding_init_std=0.01), context)
    names = embedding_table_names(first.dmp)
    tables = {name: _local(first.dmp.state_dict()[key]) for key, name in names.items()}
    again = {name: _local(second.dmp.state_dict()[key]) for key, name in names.items()}
    for name, table in tables.items():
        assert torch.equal(table, again[name])
    big = tables["t_c3"]  # 1000 x 4 values
    assert float(big.std()) == pytest.approx(0.01, rel=0.05)
    assert abs(float(big.mean())) < 0.001


def test_early_stopping_run_interrupted_and_resumed_equals_the_uninterrupted_run(
        context, tmp_path):
    aucs = [0.60, 0.70, 0.65, 0.69, 0.99]

    def run(output, resume=False, callbacks=(), scripted=aucs):
        config = small_config(output, epochs=8, patience=2, lr_plateau_factor=0.5,
                              checkpoint_every=0, resume=resume)
        trainer = toy_trainer(config, context, callbacks=callbacks)
        trainer.evaluate = ScriptedTrainer(scripted)  # type: ignore
        return trainer.fit()

    reference = run(tmp_path / "a")

    def interrupt(trainer) -> None:
        if trainer.step == 26:  # mid epoch 4, after the rate cut of epoch 3
            raise _Interrupt()

    with pytest.raises(_Interrupt):
        run(tmp_path / "b", callbacks=[interrupt])
    resumed = run(tmp_path / "b", resume=True, scripted=aucs[3:])
    expected, got = read_metrics(str(tmp_path / "a")), read_metrics(str(tmp_path / "b"))
    assert [m["step"] for m in got] == list(range(1, 33))
    assert [m["lr"] for m in got] == [m["lr"] for m in expected]
    assert [m["loss"] for m in got] == pytest.approx([m["loss"] for m in expected], rel=1e-6)
    assert resumed["early_stopping"]["epochs"] == reference["early_stopping"]["epochs"]
    assert resumed["best_epoch"] == reference["best_epoch"] == 2
