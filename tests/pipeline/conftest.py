"""Shared fixtures of the pipeline tests: tiny synthetic data (helpers: `pipeline_helpers`).

The tests that run torch ask for `one_thread` (tests/conftest.py) themselves; the pure-Python
ones (experiment configs, the report) run without torch installed.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_criteo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`nasrec synth --like criteo --rows 3000` (train 2400 / val 300 / test 300)."""
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("pipeline_data") / "criteo")
    write_synthetic("criteo", 3000, output, seed=0, row_group_rows=1000)
    return output
