"""`nasrec train` and `nasrec train-supernet` end to end on a small synthetic Criteo."""

from __future__ import annotations

import argparse
import json
import random

import pytest
from toy_training import read_metrics

pytest.importorskip("nasrec_torchrec.nn.networks")

from nasrec_torchrec.commands import train, train_supernet  # noqa: E402
from nasrec_torchrec.errors import NASRecError  # noqa: E402
from nasrec_torchrec.space import get_space, sample_architecture  # noqa: E402

COMMON = ["--batch-size", "128", "--eval-batch-size", "512", "--embedding-cap", "2000",
          "--log-every", "1", "--no-progress", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_criteo(tmp_path_factory) -> str:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("data") / "criteo")
    write_synthetic("criteo", 3000, output, seed=0, row_group_rows=1000)
    return output


def run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_train_command_trains_an_architecture_file(tiny_criteo, tmp_path):
    architecture = sample_architecture(get_space("nasrec-small"), random.Random(0))
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(architecture.to_json(indent=2))
    output = tmp_path / "run"
    assert run(train, ["--data", tiny_criteo, "--arch", str(arch_file), "--output", str(output),
                       "--max-steps", "6", "--dropout", "0.2", *COMMON]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["steps"] == 6 and results["val"]["rows"] == 300
    assert 0.0 < results["val"]["auc"] < 1.0
    effective = json.loads((output / "config.json").read_text())["config"]
    assert effective["embedding_cap"] == 2000
    assert effective["model"]["architecture_file"] == str(arch_file)
    assert effective["model"]["architecture"] == architecture.to_dict()
    assert effective["model"]["kind"] == "architecture" and effective["model"]["dropout"] == 0.2
    assert [m["step"] for m in read_metrics(str(output))] == list(range(1, 7))


def test_train_command_trains_a_baseline_with_options(tiny_criteo, tmp_path):
    output = tmp_path / "deepfm"
    assert run(train, ["--data", tiny_criteo, "--model", "deepfm", "--model-option",
                       "layer_sizes=32-16", "--output", str(output), "--max-steps", "3",
                       *COMMON]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["steps"] == 3 and results["val"]["rows"] == 300
    assert results["config"]["model"]["baseline"] == "deepfm"
    assert results["config"]["model"]["baseline_options"] == ["layer_sizes=32-16"]
    with pytest.raises(NASRecError, match="model-option dropout"):
        run(train, ["--data", tiny_criteo, "--model", "deepfm", "--dropout", "0.2",
                    "--output", str(tmp_path / "x"), *COMMON])
    with pytest.raises(NASRecError, match="unknown baseline"):
        run(train, ["--data", tiny_criteo, "--model", "nope", "--output", str(tmp_path / "x"),
                    *COMMON])


def test_train_command_needs_a_model(tiny_criteo, tmp_path):
    with pytest.raises(NASRecError, match="--arch"):
        run(train, ["--data", tiny_criteo, "--output", str(tmp_path)])
    bad = tmp_path / "bad.json"
    bad.write_text("{\"blocks\": [")
    with pytest.raises(NASRecError, match="bad.json:1"):
        run(train, ["--data", tiny_criteo, "--arch", str(bad), "--output", str(tmp_path)])


def test_train_supernet_command_trains_and_resumes(tiny_criteo, tmp_path):
    output = tmp_path / "supernet"
    argv = ["--data", tiny_criteo, "--space", "nasrec-small", "--output", str(output),
            "--max-steps", "4", "--checkpoint-every", "2", *COMMON]
    assert run(train_supernet, argv) == 0
    first = json.loads((output / "results.json").read_text())
    assert first["steps"] == 4 and first["val"]["rows"] == 300
    effective = json.loads((output / "config.json").read_text())["config"]["model"]
    assert effective["kind"] == "supernet" and effective["space"] == get_space(
        "nasrec-small").to_dict()
    assert effective["strategy"] == "single_op_any_conn"
    # resuming a finished run trains nothing more and evaluates the same model
    assert run(train_supernet, [*argv, "--resume"]) == 0
    again = json.loads((output / "results.json").read_text())
    assert again["steps"] == 4
    assert again["val"]["auc"] == pytest.approx(first["val"]["auc"], abs=1e-9)
    assert len(read_metrics(str(output))) == 4
    # a resume may change threads, logging and progress bars, not what the run computes
    assert run(train_supernet, [*argv, "--resume", "--log-every", "3", "--threads", "2"]) == 0
    with pytest.raises(NASRecError, match=r"step_000000004: --resume with other settings than "
                       r"the run's: learning_rate \(--lr\): 0.04 -> 0.1; model.strategy: "
                       r"'single_op_any_conn' -> 'any_op_any_conn'"):
        run(train_supernet, [*argv, "--resume", "--lr", "0.1", "--strategy", "any_op_any_conn"])
    assert json.loads((output / "config.json").read_text())["config"]["learning_rate"] == 0.04


def _run_supernet_command(argv: list[str]) -> None:
    assert run(train_supernet, argv) == 0


def test_two_rank_real_supernet_training_equals_one_rank(tiny_criteo, tmp_path):
    from toy_training import run_ranks

    def argv(output):
        return ["--data", tiny_criteo, "--space", "nasrec-small", "--output", str(output),
                "--max-steps", "8", "--path-warmup", "0.5", "--checkpoint-every", "0", *COMMON]

    run_ranks(2, _run_supernet_command, argv(tmp_path / "two"))
    assert run(train_supernet, argv(tmp_path / "one")) == 0
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    one_losses = [m["loss"] for m in read_metrics(str(tmp_path / "one"))]
    two_losses = [m["loss"] for m in read_metrics(str(tmp_path / "two"))]
    assert len(two_losses) == 8
    assert two_losses == pytest.approx(one_losses, rel=1e-4)
    assert two["val"]["rows"] == one["val"]["rows"] == 300
    assert two["val"]["auc"] == pytest.approx(one["val"]["auc"], abs=1e-4)
