"""Shared fixtures of the search tests: a tiny trained supernet run.

The tests that run torch ask for `one_thread` (tests/conftest.py) themselves; the pure-Python
ones (evolution, Pareto fronts, settings, outputs) run without torch installed.
"""

from __future__ import annotations

import argparse

import pytest


def _train_supernet(data: str, output: str, *flags: str) -> str:
    """`nasrec train-supernet` of nasrec-small, 4 steps on `data`, with further `flags`."""
    from nasrec_torchrec.commands import train_supernet

    parser = argparse.ArgumentParser()
    train_supernet.add_arguments(parser)
    args = parser.parse_args([
        "--data", data, "--space", "nasrec-small", "--output", output,
        "--max-steps", "4", "--batch-size", "128", "--eval-batch-size", "1024",
        "--embedding-cap", "500", "--no-progress", "--threads", "1", "--device", "cpu",
        *flags])
    assert train_supernet.run(args) == 0
    return output


@pytest.fixture(scope="session")
def supernet_run(synthetic_criteo, tmp_path_factory) -> str:
    """A nasrec-small supernet trained 4 steps on the 6000-row synthetic Criteo (skips the
    test where torch is missing)."""
    pytest.importorskip("torch")
    return _train_supernet(synthetic_criteo, str(tmp_path_factory.mktemp("supernet") / "run"))


@pytest.fixture(scope="session")
def adam_supernet_run(synthetic_criteo, tmp_path_factory) -> str:
    """`supernet_run` trained with `--optimizer adam` (SlicedAdam; data-parallel tables)."""
    pytest.importorskip("torch")
    return _train_supernet(synthetic_criteo, str(tmp_path_factory.mktemp("adam") / "run"),
                           "--optimizer", "adam", "--lr", "0.001", "--embedding-lr", "0.001")


@pytest.fixture(scope="session")
def batch_norm_supernet_run(synthetic_criteo, tmp_path_factory) -> str:
    """`supernet_run` with `--batch-norm` (BatchNorm on the dense operators)."""
    pytest.importorskip("torch")
    return _train_supernet(synthetic_criteo, str(tmp_path_factory.mktemp("bn") / "run"),
                           "--batch-norm")
