"""`--compile`: the dense body's training steps through `torch.compile` train as the eager
body does (the same losses up to float rounding, dropout included), its checkpoints are the
plain module's (loadable by an eager run, and an eager run's by a compiled one), evaluations
run eagerly, and a supernet run refuses it."""

from __future__ import annotations

import argparse
import os
import random
import shutil
from dataclasses import replace

import pytest
from torch._dynamo.utils import counters

from nasrec_torchrec.artifacts import read_json, read_jsonl
from nasrec_torchrec.cli import main
from nasrec_torchrec.commands import train
from nasrec_torchrec.space import get_space, sample_architecture
from nasrec_torchrec.train.checkpoint import list_checkpoints

COMMON = ["--max-steps", "4", "--batch-size", "128", "--eval-batch-size", "512",
          "--embedding-cap", "2000", "--log-every", "1", "--no-progress", "--threads", "1",
          "--device", "cpu", "--checkpoint-every", "2", "--keep-checkpoints", "2"]


@pytest.fixture(scope="module")
def tiny_criteo(tmp_path_factory) -> str:
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("data") / "criteo")
    write_synthetic("criteo", 1000, output, seed=0, row_group_rows=1000)
    return output


@pytest.fixture(scope="module")
def arch_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("arch") / "arch.json"
    space = replace(get_space("nasrec-small"), name="three-blocks", num_blocks=3)  # compiles fast
    path.write_text(sample_architecture(space, random.Random(0)).to_json())
    return str(path)


def _train(argv: list[str]) -> int:
    """`nasrec train` with `COMMON` and dropout (compiled, it draws the eager masks)."""
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return train.run(parser.parse_args([*argv, *COMMON, "--dropout", "0.2"]))


def _losses(output: str) -> list[float]:
    return [record["loss"] for record in read_jsonl(os.path.join(output, "metrics.jsonl"))]


def _checkpoint_keys(output: str) -> list[str]:
    """The names of the tensors and items stored in the run's last checkpoint."""
    from nasrec_torchrec.train.checkpoint_reader import SafeFileSystemReader

    path = list_checkpoints(os.path.join(output, "checkpoints"))[-1][1]
    return sorted(SafeFileSystemReader(path).read_metadata().state_dict_metadata)


def test_compiled_training_equals_eager_and_checkpoints_are_interchangeable(
        tiny_criteo, arch_file, tmp_path):
    from nasrec_torchrec.stages.evaluate import evaluate_model

    runs = {name: str(tmp_path / name) for name in ("eager", "compiled")}
    for name, output in runs.items():
        flags = ["--compile"] if name == "compiled" else []
        counters.clear()
        assert _train(["--data", tiny_criteo, "--arch", arch_file, "--output", output,
                       *flags]) == 0
    # one graph (the training step's); the evaluation (other batch sizes) ran eagerly
    assert counters["stats"]["unique_graphs"] == 1
    assert read_json(os.path.join(runs["compiled"], "config.json"))["config"]["compile"]
    eager, compiled = _losses(runs["eager"]), _losses(runs["compiled"])
    assert len(eager) == len(compiled) == 4
    assert compiled == pytest.approx(eager, rel=1e-5)
    # the checkpoints hold the plain module's tensors, under the eager run's names
    keys = _checkpoint_keys(runs["compiled"])
    assert keys == _checkpoint_keys(runs["eager"])
    assert any(".body." in key for key in keys) and not any("_orig_mod" in key for key in keys)
    # the run's evaluation was eager: an eager reload of its checkpoint scores the same
    results = read_json(os.path.join(runs["compiled"], "results.json"))
    rescored = evaluate_model(runs["compiled"], split="val", write=False)["metrics"]
    assert rescored["log_loss"] == results["val"]["log_loss"]
    # an eager run's checkpoint resumes in a compiled run
    shutil.rmtree(list_checkpoints(os.path.join(runs["eager"], "checkpoints"))[-1][1])
    assert _train(["--data", tiny_criteo, "--arch", arch_file, "--output", runs["eager"],
                   "--resume", "--compile"]) == 0
    resumed = _losses(runs["eager"])
    assert resumed[:2] == eager[:2] and resumed == pytest.approx(eager, rel=1e-5)


def test_a_supernet_run_refuses_compile(tiny_criteo, tmp_path, capsys):
    """`train-supernet` has no --compile flag; a config file asking for it is refused."""
    supernet = ["train-supernet", "--data", tiny_criteo, "--space", "nasrec-small",
                "--output", str(tmp_path / "supernet"), *COMMON]
    with pytest.raises(SystemExit) as exit_info:
        main(supernet + ["--compile"])
    assert exit_info.value.code == 2 and "--compile" in capsys.readouterr().err
    config = tmp_path / "recipe.json"
    config.write_text('{"compile": true}')
    assert main(supernet + ["--config", str(config)]) == 2
    assert "field 'compile' (--compile): not for a supernet" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "supernet" / "checkpoints")
