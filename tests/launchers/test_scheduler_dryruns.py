"""Dry runs of the components on Kubernetes (Volcano) and Slurm: the generated job specs carry
the replicas, resources, command line, env and mounts the arguments ask for."""

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import yaml
from torchx.runner import get_runner

from launcher_cases import COMPONENTS_FILE, HOSTILE, REPO

# Slurm's dry run turns any "${app_id}" into "$SLURM_JOB_ID", the user's included (torchx 0.7).
SLURM_HOSTILE = HOSTILE.replace("${app_id}", "${replica_id}")

TRAIN_SUPERNET_ARGS = [
    "-j", "2x4", "--cpu", "8", "--gpu", "4", "--memMB", "32000", "--max_retries", "2",
    "--image", "registry.example/nasrec-torchrec:0.1",
    "--env", "NCCL_DEBUG=INFO,OMP_NUM_THREADS=2",
    "--data", "/data/criteo", "--data_mount", "criteo-pvc", "--mount_type", "volume",
    "--output", "/runs/supernet",
    "--mounts", "type=volume,src=runs-pvc,dst=/runs",
]


def _expected_stage_argv(*extra: str) -> List[str]:
    return ["train-supernet", "--data", "/data/criteo", "--output", "/runs/supernet", "--resume",
            *extra]


def _stage_argv(torchrun_argv: List[str]) -> List[str]:
    assert torchrun_argv[torchrun_argv.index("-m") + 1] == "nasrec_torchrec.cli"
    return torchrun_argv[torchrun_argv.index("-m") + 2:]


# torchx warns that Volcano >= 1.4 may not honour job retries; the spec is what we check.
@pytest.mark.filterwarnings("ignore::UserWarning:torchx.schedulers.kubernetes_scheduler")
def test_kubernetes_dry_run_is_a_volcano_job_with_the_requested_spec(
    run_with_fake_torchrun: Callable[..., List[List[str]]],
) -> None:
    pytest.importorskip("kubernetes", reason="torchx[kubernetes] extra not installed")
    with get_runner() as runner:
        info = runner.dryrun_component(
            f"{COMPONENTS_FILE}:train_supernet", TRAIN_SUPERNET_ARGS + ["--", "--space", HOSTILE], "kubernetes",
            cfg={"queue": "nasrec-queue", "namespace": "nasrec"}, workspace=None,
        )
    job = yaml.safe_load(str(info.request))
    assert (job["apiVersion"], job["kind"]) == ("batch.volcano.sh/v1alpha1", "Job")
    assert job["spec"]["queue"] == "nasrec-queue" and job["spec"]["schedulerName"] == "volcano"
    assert job["spec"]["maxRetry"] == 2
    tasks = job["spec"]["tasks"]
    assert [(task["name"], task["replicas"]) for task in tasks] == [("train-supernet-0", 1), ("train-supernet-1", 1)]
    for task in tasks:
        pod = task["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "registry.example/nasrec-torchrec:0.1"
        assert container["resources"]["limits"] == {
            "cpu": "8000m", "memory": "32000M", "nvidia.com/gpu": "4"}
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "4"
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["NCCL_DEBUG"] == "INFO" and env["OMP_NUM_THREADS"] == "2"
        assert env["PYTHONUNBUFFERED"] == "1"
        mounts = {mount["mountPath"]: (mount["name"], mount["readOnly"])
                  for mount in container["volumeMounts"] if mount["mountPath"] != "/dev/shm"}
        claims = {volume["name"]: volume["persistentVolumeClaim"]["claimName"]
                  for volume in pod["volumes"] if "persistentVolumeClaim" in volume}
        assert {path: (claims[name], read_only) for path, (name, read_only) in mounts.items()} == {
            "/data/criteo": ("criteo-pvc", True), "/runs": ("runs-pvc", False)}

        command = container["command"]
        assert command[:2] == ["bash", "-c"]
        assert "--nnodes 2 --nproc_per_node 4" in command[2]
        (torchrun_argv,) = run_with_fake_torchrun(command)
        assert _stage_argv(torchrun_argv) == _expected_stage_argv("--space", HOSTILE)


def test_slurm_dry_run_is_an_sbatch_script_with_the_requested_spec(
    run_with_fake_torchrun: Callable[..., List[List[str]]], tmp_path: Path,
) -> None:
    with get_runner() as runner:
        info = runner.dryrun_component(
            f"{COMPONENTS_FILE}:train_supernet",
            TRAIN_SUPERNET_ARGS + ["--", "--space", SLURM_HOSTILE], "slurm",
            cfg={"partition": "gpu", "time": "2:00:00"}, workspace=None,
        )
    request = info.request
    assert request.max_retries == 2
    assert list(request.replicas) == ["train-supernet-0", "train-supernet-1"]
    for replica in request.replicas.values():
        assert replica.sbatch_opts == {
            "requeue": None, "partition": "gpu", "time": "2:00:00", "ntasks-per-node": "1",
            "cpus-per-task": "8", "mem": "32000", "gpus-per-task": "4"}
        assert replica.env["NCCL_DEBUG"] == "INFO" and replica.env["OMP_NUM_THREADS"] == "2"
        assert replica.entrypoint == "bash"
    script = request.materialize()
    assert script.count("#SBATCH --job-name=train-supernet-") == 2 and "#SBATCH hetjob" in script
    assert "export TORCHX_MAX_RETRIES=2" in script

    # Run the script itself: fake srun runs each node's program, fake torchrun records it.
    script_file = tmp_path / "job.sbatch"
    script_file.write_text(script)
    calls = run_with_fake_torchrun(["bash", str(script_file)], env={"SLURM_JOB_ID": "42"})
    assert len(calls) == 2
    for torchrun_argv in calls:
        assert torchrun_argv[torchrun_argv.index("--rdzv_id") + 1] == "42"
        assert _stage_argv(torchrun_argv) == _expected_stage_argv("--space", SLURM_HOSTILE)


def test_slurm_dry_run_of_the_search_runs_torchrun_on_every_node(
    run_with_fake_torchrun: Callable[..., List[List[str]]], tmp_path: Path,
) -> None:
    """`-j 2x2`: two nodes of two ranks each, which share the candidates (rank_study and
    retrain build their jobs the same way: tests/launchers/test_components.py)."""
    component, paths = "search", ["--supernet", "/runs/supernet", "--output", "/runs/search"]
    with get_runner() as runner:
        info = runner.dryrun_component(
            f"{COMPONENTS_FILE}:{component}",
            ["-j", "2x2", "--cpu", "4", *paths, "--", "--threads", "2"], "slurm",
            cfg={"partition": "cpu", "time": "1:00:00"}, workspace=None,
        )
    request = info.request
    stage = component.replace("_", "-")
    assert list(request.replicas) == [f"{stage}-0", f"{stage}-1"]
    for replica in request.replicas.values():
        assert replica.sbatch_opts["cpus-per-task"] == "4"
        assert replica.env["OMP_NUM_THREADS"] == "2"
    script_file = tmp_path / "job.sbatch"
    script_file.write_text(request.materialize())
    calls = run_with_fake_torchrun(["bash", str(script_file)], env={"SLURM_JOB_ID": "7"})
    assert len(calls) == 2
    for torchrun_argv in calls:
        assert torchrun_argv[torchrun_argv.index("--nproc_per_node") + 1] == "2"
        assert torchrun_argv[torchrun_argv.index("--nnodes") + 1] == "2"
        assert _stage_argv(torchrun_argv) == [stage, *paths, "--resume", "--threads", "2"]


@pytest.mark.parametrize("scheduler, expected", [
    ("kubernetes", ["queue: default", "batch.volcano.sh/v1alpha1"]),
    ("slurm", ["--time=24:00:00", "nasrec_torchrec.cli train-supernet --data /data --output /runs/s"]),
])
def test_cli_dry_run_from_the_repository_uses_torchxconfig_defaults_without_docker(
    scheduler: str, expected: List[str],
) -> None:
    if scheduler == "kubernetes":
        pytest.importorskip("kubernetes", reason="torchx[kubernetes] extra not installed")
    torchx = str(Path(sys.executable).parent / "torchx")
    env: Dict[str, str] = {key: value for key, value in os.environ.items()
                           if key not in ("TORCHXCONFIG", "HOME")}
    env["HOME"] = str(REPO / "nonexistent-home")  # no user-level ~/.torchxconfig
    result = subprocess.run(
        [torchx, "run", "-s", scheduler, "--dryrun", "launchers/components.py:train_supernet",
         "--data", "/data", "--output", "/runs/s"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for text in expected:
        assert text in result.stdout, f"{text!r} not in:\n{result.stdout[-3000:]}"
    assert shlex.quote("/runs/s") in result.stdout


def test_cli_passes_a_repeated_stage_flag_written_with_equals_signs() -> None:
    """torchx 0.7's CLI refuses `-- --set a --set b` (a repeated option); `--set=a --set=b`
    reaches the stage intact."""
    torchx = str(Path(sys.executable).parent / "torchx")
    result = subprocess.run(
        [torchx, "run", "-s", "local_cwd", "--dryrun", "launchers/components.py:pipeline",
         "--output", "/runs/p", "--", "--set=search.budget=30", "--set=retrain.top_k=5"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--set=search.budget=30" in result.stdout and "--set=retrain.top_k=5" in result.stdout


EMBEDDING_BENCHMARK_ARGS = [
    "-j", "2x2", "--cpu", "16", "--memMB", "64000", "--output", "/runs/bench",
    "--", "--total-rows", "1e7", "1e8", "--sharding-types", "table_wise", "row_wise",
]
EMBEDDING_BENCHMARK_ARGV = ["bench", "embeddings", "--output", "/runs/bench", "--total-rows",
                            "1e7", "1e8", "--sharding-types", "table_wise", "row_wise"]


# torchx warns that Volcano >= 1.4 may not honour job retries; the spec is what we check.
@pytest.mark.filterwarnings("ignore::UserWarning:torchx.schedulers.kubernetes_scheduler")
def test_kubernetes_dry_run_of_the_embedding_benchmark_runs_the_bench_command_on_every_rank(
    run_with_fake_torchrun: Callable[..., List[List[str]]],
) -> None:
    pytest.importorskip("kubernetes", reason="torchx[kubernetes] extra not installed")
    with get_runner() as runner:
        info = runner.dryrun_component(
            f"{COMPONENTS_FILE}:embedding_benchmark", EMBEDDING_BENCHMARK_ARGS, "kubernetes",
            cfg={"queue": "default", "namespace": "nasrec"}, workspace=None)
    tasks = yaml.safe_load(str(info.request))["spec"]["tasks"]
    assert [(task["name"], task["replicas"]) for task in tasks] == [
        ("bench-embeddings-0", 1), ("bench-embeddings-1", 1)]
    for task in tasks:
        (container,) = task["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["memory"] == "64000M"
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["OMP_NUM_THREADS"] == "8"  # 16 CPUs per node over 2 ranks
        assert "--nnodes 2 --nproc_per_node 2" in container["command"][2]
        (torchrun_argv,) = run_with_fake_torchrun(container["command"])
        assert _stage_argv(torchrun_argv) == EMBEDDING_BENCHMARK_ARGV


def test_slurm_dry_run_of_the_embedding_benchmark_runs_the_bench_command_on_every_node(
    run_with_fake_torchrun: Callable[..., List[List[str]]], tmp_path: Path,
) -> None:
    with get_runner() as runner:
        info = runner.dryrun_component(
            f"{COMPONENTS_FILE}:embedding_benchmark", EMBEDDING_BENCHMARK_ARGS, "slurm",
            cfg={"partition": "cpu", "time": "1:00:00"}, workspace=None)
    request = info.request
    assert list(request.replicas) == ["bench-embeddings-0", "bench-embeddings-1"]
    for replica in request.replicas.values():
        assert replica.sbatch_opts["mem"] == "64000" and replica.sbatch_opts["cpus-per-task"] == "16"
    script_file = tmp_path / "job.sbatch"
    script_file.write_text(request.materialize())
    calls = run_with_fake_torchrun(["bash", str(script_file)], env={"SLURM_JOB_ID": "7"})
    assert len(calls) == 2
    for torchrun_argv in calls:
        assert "--nproc_per_node" in torchrun_argv
        assert torchrun_argv[torchrun_argv.index("--nproc_per_node") + 1] == "2"
        assert _stage_argv(torchrun_argv) == EMBEDDING_BENCHMARK_ARGV
