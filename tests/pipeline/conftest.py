"""Shared fixtures of the pipeline tests: tiny synthetic data and a command runner."""

from __future__ import annotations

import argparse
import importlib
import json
import random

import pytest

TINY_TRAIN = ["--batch-size", "128", "--eval-batch-size", "512", "--embedding-cap", "500",
              "--no-progress", "--threads", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test of this folder runs torch on one thread (`one_thread` of tests/conftest.py)."""


@pytest.fixture(scope="session")
def tiny_criteo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`nasrec synth --like criteo --rows 3000` (train 2400 / val 300 / test 300)."""
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("pipeline_data") / "criteo")
    write_synthetic("criteo", 3000, output, seed=0, row_group_rows=1000)
    return output


def run_command(module_name: str, argv: list[str]) -> int:
    """Run `nasrec <command>` in this process (the command module's parser and run)."""
    module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def write_candidates(path: str, losses: list[float], seed: int = 1) -> list[dict]:
    """A hand-written `candidates.jsonl`: random nasrec-small architectures with `losses`."""
    from nasrec_torchrec.space import get_space, sample_architecture

    space = get_space("nasrec-small")
    rng = random.Random(seed)
    records = []
    for index, loss in enumerate(losses):
        architecture = sample_architecture(space, rng)
        records.append({"index": index, "generation": 0, "loss": loss, "log_loss": loss,
                        "auc": 0.6, "mflops": 1.0, "params": 1,
                        "architecture": architecture.to_dict()})
    with open(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return records
