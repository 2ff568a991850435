"""The scripts of `examples/` run as a user runs them: alone and under torchrun on 2 ranks
(gloo on CPU), a few steps each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = "3"


def _run(command: list[str]) -> subprocess.CompletedProcess:
    python_path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("script", [["train_found_architecture.py"],
                                    ["train_baseline.py", "--model", "deepfm"]],
                         ids=["found_architecture", "baseline"])
def test_example_trains_for_the_steps_asked(script, ranks):
    launcher = [sys.executable] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(ranks)]
    result = _run([*launcher, f"examples/{script[0]}", *script[1:], "--steps", STEPS,
                   "--batch-size", "32"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{STEPS} steps on {ranks} ranks: loss" in result.stdout, result.stdout
