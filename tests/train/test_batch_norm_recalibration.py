"""Precise BN (`TrainConfig.bn_recalibration_batches`): the statistics a trained found
architecture is evaluated and saved with are the plain average over the first N unshuffled
training batches (end of run and per-epoch early stopping); off changes nothing."""

from __future__ import annotations

import pytest
import torch

from nasrec_torchrec.artifacts import read_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.nn.batch_norm import batch_norms
from nasrec_torchrec.settings import changed_settings
from nasrec_torchrec.space import get_space, sample_probes
from nasrec_torchrec.train.batch_norm_recalibration import batch_norm_recalibration
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.model_trainer import model_trainer

BATCH, CAP = 128, 2000  # 960 training rows: 7 steps an epoch


@pytest.fixture(scope="module")
def small_criteo(tmp_path_factory) -> str:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("data") / "criteo")
    write_synthetic("criteo", 1200, output, seed=0, row_group_rows=1000)
    return output


def _config(data: str, output: str, batch_norm: bool = True, **settings: object) -> TrainConfig:
    architecture = sample_probes(get_space("nasrec-small"), 1, seed=0)[0]
    values = dict(data=data, output=output, batch_size=BATCH, eval_batch_size=512,
                  embedding_cap=CAP, epochs=2, optimizer="adam", learning_rate=1e-2,
                  embedding_learning_rate=1e-2, lr_schedule="constant", lr_warmup_steps=0,
                  embedding_init_std=1e-4, progress_bar=False, threads=1, device="cpu",
                  model=ModelSpec.for_architecture(architecture, batch_norm=batch_norm))
    values.update(settings)
    return TrainConfig(**values)  # type: ignore[arg-type]


@torch.no_grad()
def _hand_statistics(trainer, data: str, batches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first BatchNorm's (mean of the batch means, mean of the unbiased batch variances)
    over the first `batches` unshuffled training batches, with the trainer's weights."""
    from nasrec_torchrec.data.loader import ParquetBatchLoader

    norm = batch_norms(trainer.body)[0]
    inputs: list[torch.Tensor] = []
    handle = norm.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    trainer.dmp.train()  # every BatchNorm on its batch's statistics, as recalibrating
    for batch in list(ParquetBatchLoader(data, "train", BATCH, embedding_cap=CAP,
                                         shuffle=False, drop_last=True))[:batches]:
        trainer.dmp(batch)
    handle.remove()
    trainer.dmp.eval()
    flat = [x.transpose(0, 1).flatten(1) for x in inputs]  # [C, rows]
    return (torch.stack([x.mean(1) for x in flat]).mean(0),
            torch.stack([x.var(1, unbiased=True) for x in flat]).mean(0))


@pytest.mark.parametrize("patience", [None, 2])
def test_evaluation_and_checkpoint_carry_the_statistics_of_the_first_batches(
        context, small_criteo, tmp_path, patience):
    from nasrec_torchrec.stages.evaluate import load_trained_model

    config = _config(small_criteo, str(tmp_path), bn_recalibration_batches=3,
                     patience=patience)
    trainer = model_trainer(config, context)
    results = trainer.fit()
    norm = batch_norms(trainer.body)[0]
    evaluated = norm.running_mean.clone(), norm.running_var.clone()
    tracked = int(norm.num_batches_tracked)  # reset by the recalibration: 3, not the steps
    saved = batch_norms(load_trained_model(str(tmp_path))[0])[0]
    mean, var = _hand_statistics(trainer, small_criteo, 3)
    assert torch.allclose(evaluated[0], mean, atol=1e-6)
    assert torch.allclose(evaluated[1], var, rtol=1e-5, atol=1e-6)
    assert torch.equal(saved.running_mean, evaluated[0])
    assert torch.equal(saved.running_var, evaluated[1])
    assert tracked == int(saved.num_batches_tracked) == 3
    assert read_json(f"{tmp_path}/config.json")["config"]["bn_recalibration_batches"] == 3
    assert results["config"]["bn_recalibration_batches"] == 3
    if patience is not None:
        assert results["best_epoch"] in (1, 2)


def test_off_or_without_batch_norm_the_run_is_unchanged(context, small_criteo, tmp_path):
    runs = {}
    for name, batch_norm, batches in (("ln_off", False, 0), ("ln_on", False, 3)):
        config = _config(small_criteo, str(tmp_path / name), batch_norm=batch_norm,
                         bn_recalibration_batches=batches, epochs=1)
        trainer = model_trainer(config, context)
        assert trainer.bn_recalibration is None
        runs[name] = trainer.fit()
    assert runs["ln_off"]["val"] == runs["ln_on"]["val"]
    assert runs["ln_off"]["final_train_loss"] == runs["ln_on"]["final_train_loss"]


def test_negative_batches_and_supernets_are_refused(tmp_path):
    config = TrainConfig(data="d", output=str(tmp_path), bn_recalibration_batches=-1)
    with pytest.raises(NASRecError, match=r"bn_recalibration_batches.*--bn-recalibration-b"):
        config.validate()
    config.bn_recalibration_batches = 2
    with pytest.raises(NASRecError, match=r"--bn-recalibration-batches.*supernet"):
        batch_norm_recalibration(config, None, torch.nn.BatchNorm1d(3), supernet=True)


def test_a_run_recorded_before_the_field_resumes_with_it_off():
    recorded = TrainConfig().to_dict()
    del recorded["bn_recalibration_batches"]
    assert changed_settings(TrainConfig(), recorded) == []
    assert changed_settings(TrainConfig(bn_recalibration_batches=4), recorded) == [
        "bn_recalibration_batches (--bn-recalibration-batches): 0 -> 4"]


def test_only_commands_that_train_one_model_offer_the_flag():
    import argparse

    from nasrec_torchrec.commands import final, train_supernet

    def flags(command) -> set[str]:
        parser = argparse.ArgumentParser()
        command.add_arguments(parser)
        return {flag for action in parser._actions for flag in action.option_strings}

    assert {"--bn-recalibration-batches", "--patience"} <= flags(final)
    assert not {"--bn-recalibration-batches", "--patience"} & flags(train_supernet)
