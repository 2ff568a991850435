"""Shared fixtures of the search tests: a tiny trained supernet run.

The tests that run torch ask for `one_thread` (tests/conftest.py) themselves; the pure-Python
ones (evolution, Pareto fronts, settings, outputs) run without torch installed.
"""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture(scope="session")
def supernet_run(synthetic_criteo, tmp_path_factory) -> str:
    """A nasrec-small supernet trained 4 steps on the 6000-row synthetic Criteo (skips the
    test where torch is missing)."""
    pytest.importorskip("torch")
    from nasrec_torchrec.commands import train_supernet

    output = str(tmp_path_factory.mktemp("supernet") / "run")
    parser = argparse.ArgumentParser()
    train_supernet.add_arguments(parser)
    args = parser.parse_args([
        "--data", synthetic_criteo, "--space", "nasrec-small", "--output", output,
        "--max-steps", "4", "--batch-size", "128", "--eval-batch-size", "1024",
        "--embedding-cap", "500", "--no-progress", "--threads", "1", "--device", "cpu"])
    assert train_supernet.run(args) == 0
    return output
