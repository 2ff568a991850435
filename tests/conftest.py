"""Shared fixtures: small synthetic datasets made once per test session, one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def synthetic_criteo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A prepared 6000-row Criteo-shaped synthetic dataset (80/10/10, seed 0)."""
    from nasrec_torchrec.data.synth import write_synthetic

    output = str(tmp_path_factory.mktemp("synthetic") / "criteo")
    write_synthetic("criteo", 6000, output, seed=0, row_group_rows=1000)
    return output


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (two threads on a shared 2-core machine can be many
    times slower than one); a folder's conftest makes it autouse where wanted."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
