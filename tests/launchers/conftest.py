"""Fixtures of the launcher tests: the components file, loaded by path as torchx loads it, and
fake `torchrun`/`srun` executables that record the argv a scheduler's command line gives them."""

import importlib.util
import json
import os
import subprocess
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from launcher_cases import COMPONENTS_FILE  # noqa: E402

_FAKE_TORCHRUN = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""

# srun OPTIONS... PROGRAM ARGS... [: OPTIONS... PROGRAM ARGS...]: runs each heterogeneous
# group's program in turn, like one replica per group.
_FAKE_SRUN = """#!{python}
import subprocess, sys
groups, group = [], []
for arg in sys.argv[1:]:
    if arg == ":":
        groups.append(group)
        group = []
    elif group or not arg.startswith("-"):
        group.append(arg)
groups.append(group)
for program in groups:
    subprocess.run(program, check=True)
"""


@pytest.fixture(scope="session")
def components() -> ModuleType:
    """`launchers/components.py` as a module (it is not on sys.path under pytest)."""
    spec = importlib.util.spec_from_file_location("nasrec_launcher_components", COMPONENTS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_with_fake_torchrun(tmp_path: Path) -> Callable[..., List[List[str]]]:
    """Runs `argv` (as a scheduler execs it) in `tmp_path` with fake torchrun and srun first
    on PATH; returns the argv of every torchrun call. `tmp_path` is the working directory, so
    an injected `touch pwned` would leave a file there."""
    bin_dir = tmp_path / "fake_bin"
    bin_dir.mkdir()
    for name, source in (("torchrun", _FAKE_TORCHRUN), ("srun", _FAKE_SRUN)):
        path = bin_dir / name
        path.write_text(source.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    argv_log = tmp_path / "torchrun_argv.jsonl"

    def run(argv: List[str], env: Optional[Dict[str, str]] = None) -> List[List[str]]:
        process_env = {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "HOME": "/home/x",
                       "ARGV_LOG": str(argv_log), **(env or {})}
        subprocess.run(argv, cwd=tmp_path, env=process_env, check=True, capture_output=True)
        calls = [json.loads(line) for line in argv_log.read_text().splitlines()]
        argv_log.unlink()
        return calls

    return run
