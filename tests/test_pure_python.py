"""The pure-Python modules' tests pass where torch, torchrec and fbgemm_gpu cannot be imported.

The tests below run in a pytest subprocess with a plugin (`-p block_torch`) whose import hook
refuses those packages: a torch import reaching the search space, evolution and random search,
the strategy registry, the search settings and outputs, the artifacts, the plots or the
experiment configs fails their tests here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PURE_TESTS = (
    "tests/space",
    "tests/search/test_evolution.py",
    "tests/search/test_pareto.py",
    "tests/search/test_strategies.py",
    "tests/search/test_search_settings.py",
    "tests/search/test_outputs.py",
    "tests/search/test_rank_study.py",
    "tests/search/test_rank_study_scratch_from.py",
    "tests/pipeline/test_config.py",
    "tests/pipeline/test_report.py",
    "tests/analysis/test_plots.py",
    "tests/test_artifacts.py",
    "tests/test_settings.py",
    "tests/test_layers.py",
    "tests/train/test_schedules.py",
    "tests/stages/test_leaderboard.py",
    "tests/stages/test_repeats.py",
    "tests/stages/bench/test_embedding_report.py",
)
"""Tests of pure modules. A test here that needs torch skips itself (`importorskip`)."""

BLOCK_TORCH = '''"""pytest plugin: importing torch, torchrec or fbgemm_gpu raises ImportError."""
import sys

BLOCKED = ("torch", "torchrec", "fbgemm_gpu")
assert not any(name.partition(".")[0] in BLOCKED for name in sys.modules), "imported already"


class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked (a run of the pure-Python tests)",
                                      name=name)
        return None


sys.meta_path.insert(0, BlockTorch())
'''


def run_without_torch(tmp_path: Path, *paths: str) -> subprocess.CompletedProcess:
    """`pytest -p block_torch PATHS` from the repository root; its completed process."""
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / "block_torch.py").write_text(BLOCK_TORCH)
    python_path = [str(plugin_dir), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, python_path))}
    command = [sys.executable, "-m", "pytest", "-p", "block_torch", "-p", "no:cacheprovider",
               "-q", "-rs", "--basetemp", str(tmp_path / "basetemp"), *paths]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_pure_modules_pass_their_tests_without_torch(tmp_path):
    result = run_without_torch(tmp_path, *PURE_TESTS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert int(re.search(r"(\d+) passed", output).group(1)) > 150, output
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert all("torch" in line for line in skips), skips  # only the tests that need torch


def test_a_torch_import_in_a_pure_test_fails_the_run(tmp_path):
    test = tmp_path / "test_imports_torch.py"
    test.write_text("import torch\n\n\ndef test_nothing():\n    pass\n")
    result = run_without_torch(tmp_path, str(test))
    assert result.returncode != 0
    assert "torch is blocked" in result.stdout + result.stderr
