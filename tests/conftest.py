"""Shared fixtures: small synthetic datasets made once per test session, one torch thread, and
the `nasrec` command in processes forked from one that imported torch once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
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


@pytest.fixture(scope="session")
def nasrec():
    """`nasrec(argv, kill=(point, count), ranks=1)` -> the exit status of each rank: the
    `nasrec` command run in processes forked from one that imported torch once
    (`kill_driver.py`), alone or as `ranks` gloo ranks set up as torchrun sets them up, and
    killed at the point asked (see `kill_driver.py`); without `kill`, every rank must exit 0."""
    zygote = subprocess.Popen(
        [sys.executable, os.path.join(TESTS, "kill_driver.py")], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1",
             "PYTHONPATH": os.pathsep.join([os.path.dirname(TESTS), *sys.path])})
    assert json.loads(zygote.stdout.readline()) == "ready"

    def run(argv: list[str], kill: tuple[str, int] | None = None, ranks: int = 1
            ) -> list[int]:
        point, count = kill or (None, 0)
        zygote.stdin.write(json.dumps({"argv": argv, "point": point, "count": count,
                                       "ranks": ranks}) + "\n")
        zygote.stdin.flush()
        statuses = json.loads(zygote.stdout.readline())
        if kill is None:
            assert statuses == [0] * ranks
        return statuses

    yield run
    zygote.stdin.close()
    zygote.wait(timeout=60)
