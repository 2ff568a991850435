"""A real `torchx run -s slurm` of the train_supernet component on a running Slurm cluster
(`bash scripts/slurm_local.sh` starts a one-node one here): the job is accepted, torchx follows
it to SUCCEEDED through Slurm's accounting, and its metrics equal the same component's run on
`-s local_cwd`. Skips, saying why, when no cluster is up.

The job runs in the directory torchx is started from, with the environment it is started with
(sbatch exports it): the PATH of this interpreter's environment gives it torchrun, and
PYTHONPATH this checkout."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from launcher_cases import COMPONENTS_FILE, REPO
from nasrec_torchrec.artifacts import METRICS_FILE, RESULTS_FILE, read_json, read_jsonl

pytestmark = pytest.mark.slurm

START_HINT = "start a one-node cluster with `bash scripts/slurm_local.sh`"
LAUNCH_ARGS = ["-j", "1x1", "--cpu", "1", "--memMB", "2000"]
STAGE_ARGS = ["--", "--space", "nasrec-small", "--max-steps", "4", "--batch-size", "128",
              "--log-every", "1", "--no-progress"]
TIMING_KEYS = ("samples_per_second", "train_seconds")


def _slurm_problem() -> Optional[str]:
    """Why no job can run on Slurm here, or None when a node has free CPUs and sacct
    answers."""
    missing = [name for name in ("scontrol", "sinfo", "sbatch", "sacct")
               if shutil.which(name) is None]
    if missing:
        return f"no Slurm client ({', '.join(missing)} not on PATH): {START_HINT}"
    # scontrol ping answers at once; sinfo retries a down controller for seconds
    controller = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if controller.returncode != 0:
        answer = (controller.stdout + controller.stderr).strip().splitlines()[:1]
        return f"no Slurm controller answers ({' '.join(answer)}): {START_HINT}"
    nodes = subprocess.run(["sinfo", "--noheader", "--format", "%t"], capture_output=True,
                           text=True, timeout=30)
    if nodes.returncode != 0:
        return f"sinfo fails ({nodes.stderr.strip()}): {START_HINT}"
    if not {"idle", "mix"} & set(nodes.stdout.split()):
        return f"no Slurm node with free CPUs (sinfo: {' '.join(nodes.stdout.split()) or 'none'})"
    accounting = subprocess.run(["sacct", "--noheader", "--allocations"], capture_output=True,
                                text=True, timeout=30)
    if accounting.returncode != 0:
        return (f"sacct fails ({accounting.stderr.strip()}): torchx reads a Slurm job's state "
                "from accounting (slurmdbd)")
    return None


def _torchx_run(scheduler_args: List[str], data: str, output: Path, cwd: Path) -> str:
    """Runs the train_supernet component with `torchx run SCHEDULER_ARGS` in `cwd`; what it
    printed."""
    bin_dir = str(Path(sys.executable).parent)  # torchx and torchrun of this environment
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": python_path}
    cwd.mkdir(parents=True)
    result = subprocess.run(
        [os.path.join(bin_dir, "torchx"), "run", *scheduler_args,
         f"{COMPONENTS_FILE}:train_supernet", *LAUNCH_ARGS, "--data", data,
         "--output", str(output), *STAGE_ARGS],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    return text


def _without_timings(record: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in record.items() if key not in TIMING_KEYS}


def test_slurm_train_supernet_runs_to_completion_with_the_metrics_of_local_cwd(
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    problem = _slurm_problem()
    if problem:
        pytest.skip(problem)
    synthetic_criteo = request.getfixturevalue("synthetic_criteo")  # made only when it runs
    local_output, slurm_output = tmp_path / "local", tmp_path / "slurm"
    jobs_dir = tmp_path / "slurm_jobs"  # the job's working directory: its slurm-*.out/err
    _torchx_run(["-s", "local_cwd", "-cfg", f"log_dir={tmp_path / 'local_logs'}"],
                synthetic_criteo, local_output, tmp_path / "local_cwd")
    text = _torchx_run(["-s", "slurm", "--wait", "-cfg", "time=20"], synthetic_criteo,
                       slurm_output, jobs_dir)

    handle = re.search(r"slurm://[^/\s]*/(\d+)", text)
    assert handle, f"no slurm app handle in:\n{text[-4000:]}"
    job_id = handle.group(1)
    assert "SUCCEEDED" in text, text[-4000:]
    state = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs",
                            job_id, "--format", "State"],
                           capture_output=True, text=True, timeout=30, check=True)
    assert state.stdout.split() == ["COMPLETED"]
    assert (jobs_dir / f"slurm-{job_id}-train-supernet-0.err").is_file()

    slurm_metrics = read_jsonl(str(slurm_output / METRICS_FILE))
    local_metrics = read_jsonl(str(local_output / METRICS_FILE))
    assert [record["step"] for record in slurm_metrics] == [1, 2, 3, 4]
    assert [_without_timings(r) for r in slurm_metrics] == [
        _without_timings(r) for r in local_metrics]
    slurm_results = read_json(str(slurm_output / RESULTS_FILE))
    local_results = read_json(str(local_output / RESULTS_FILE))
    assert slurm_results["world_size"] == 1 and slurm_results["steps"] == 4
    assert slurm_results["val"] == local_results["val"]
    assert slurm_results["final_train_loss"] == local_results["final_train_loss"]
