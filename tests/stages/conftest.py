"""Shared fixtures of the serving tests: raw Criteo-shaped logs, the dataset prepared from them,
a trained found architecture (capped tables) and a trained baseline (full tables), and new raw
rows prepared with the training vocabularies (what `nasrec evaluate` scores)."""

from __future__ import annotations

import os

import pytest

from serving_helpers import run_command

ARCHITECTURE = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "architectures",
                            "simple.json")
TRAIN_FLAGS = ["--max-steps", "3", "--batch-size", "256", "--eval-batch-size", "512",
               "--no-progress", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Raw logs (`raw/train.txt`, 2000 rows; `new/train.txt`, 400 other rows) and
    `data/` prepared from the first (80/10/10, with vocabularies)."""
    from nasrec_torchrec.data.synth import write_synthetic

    root = str(tmp_path_factory.mktemp("serving"))
    write_synthetic("criteo", 2000, os.path.join(root, "raw"), seed=0, raw=True)
    write_synthetic("criteo", 400, os.path.join(root, "new"), seed=1, raw=True)
    assert run_command("prepare", ["--format", "criteo", "--input",
                                   os.path.join(root, "raw", "train.txt"),
                                   "--output", os.path.join(root, "data")]) == 0
    return root


@pytest.fixture(scope="session")
def new_rows(serving_root: str) -> str:
    """The raw file of new rows (Criteo TSV with labels)."""
    return os.path.join(serving_root, "new", "train.txt")


@pytest.fixture(scope="session")
def new_data(serving_root: str, new_rows: str) -> str:
    """The new rows prepared with the training vocabularies: split `test`, in file order."""
    output = os.path.join(serving_root, "new_data")
    assert run_command("prepare", ["--format", "criteo", "--input", new_rows, "--split", "none",
                                   "--split-name", "test", "--schema-from",
                                   os.path.join(serving_root, "data"), "--output", output]) == 0
    return output


@pytest.fixture(scope="session")
def architecture_run(serving_root: str) -> str:
    """`nasrec train --arch simple.json` for 3 steps, tables capped at 100 rows (rarer ids
    hashed)."""
    output = os.path.join(serving_root, "architecture_run")
    assert run_command("train", ["--data", os.path.join(serving_root, "data"), "--arch",
                                 ARCHITECTURE, "--output", output, "--embedding-cap", "100",
                                 *TRAIN_FLAGS]) == 0
    return output


@pytest.fixture(scope="session")
def baseline_run(serving_root: str) -> str:
    """`nasrec train --model dcnv2` for 3 steps with full tables."""
    output = os.path.join(serving_root, "baseline_run")
    assert run_command("train", ["--data", os.path.join(serving_root, "data"), "--model",
                                 "dcnv2", "--model-option", "layer_sizes=64-32",
                                 "--output", output, "--full-tables", *TRAIN_FLAGS]) == 0
    return output
