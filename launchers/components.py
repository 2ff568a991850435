"""TorchX components: one per stage of the `nasrec` command, the whole pipeline, and the
embedding benchmark (`nasrec bench embeddings`).

Each component is a plain function returning a `torchx.specs.AppDef` built on
`torchx.components.dist.ddp`: `j` = nodes x processes per node running
`python -m nasrec_torchrec.cli <stage> ...` under torchrun (gloo on CPU, NCCL on GPU). Its
docstring's `Args:` is the help of `torchx run launchers/components.py:<component> --help`;
arguments after `--` go to the stage unchanged, after the ones the component sets (so they
win where argparse keeps the last value).

Examples (from the repository root)::

    torchx run -s local_cwd launchers/components.py:train_supernet \\
        --data data/criteo --output runs/supernet -- --space nasrec-small --max-steps 100
    torchx run -s kubernetes -cfg queue=default,namespace=nasrec \\
        launchers/components.py:train_supernet --image registry/nasrec-torchrec:0.1 -j 2x4 \\
        --mounts type=volume,src=nasrec-runs,dst=/runs \\
        --data /runs/data --output /runs/supernet -- --checkpoint-every 1000

Quoting: every user string (paths, pass-through arguments, environment values) reaches the
stage as exactly one argv element. ddp joins the torchrun command line for `bash -c` with
`shlex.quote`; before that we escape `$` as `$$`, so TorchX's macro substitution
(`${app_id}`, `${replica_id}`, ...), which runs over a role's args and env, leaves user text
alone. (One exception, in torchx 0.7's Slurm scheduler: it replaces a literal `${app_id}`
anywhere in the command line by the job id.)

Restarts: stages that can resume are given `--resume`, so a job the scheduler restarts
(`max_retries`), or one submitted again, continues from its output's latest checkpoint; on a
fresh output `--resume` starts afresh. Checkpoint often enough for that to pay
(`-- --checkpoint-every N`).

The repository's `.torchxconfig` disables the workspace (no Docker needed, jobs run the code
in the image) and holds the Kubernetes queue/namespace and Slurm time defaults.

This file imports only torchx: it is loaded on the machine that submits, which may have
neither torch nor this project installed.
"""

import inspect
import posixpath
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from torchx import specs
from torchx.components import dist

MODULE = "nasrec_torchrec.cli"
"""The module every job runs (`python -m nasrec_torchrec.cli <stage> ...`)."""

DEFAULT_IMAGE = "nasrec-torchrec:latest"
"""Container image with this project installed (kubernetes); local_cwd and slurm ignore it."""

RESUMABLE_STAGES = frozenset({"train-supernet", "train", "search", "retrain", "final", "pipeline"})
"""Stages whose command takes `--resume` (pinned against the real parsers by the tests)."""

MOUNT_TYPES = ("bind", "volume")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Help of the launch parameters every component shares; `_launch_args_documented` appends the
# ones a component has to its docstring's Args, in signature order.
_SHARED_ARG_HELP: Dict[str, str] = {
    "script_args": "further arguments of the stage, after --, passed through unchanged (the "
    "torchx CLI refuses an option repeated verbatim: write --flag=a --flag=b)",
    "mount_type": "what the *_mount arguments name: 'bind' (host paths; hostPath on "
    "Kubernetes) or 'volume' (volume names; PersistentVolumeClaims on Kubernetes)",
    "j": "{nnodes}x{nproc_per_node} (e.g. 1x2, 2x8), or {min}:{max}x{nproc_per_node} for an "
    "elastic job",
    "image": "container image with this project installed (Kubernetes); local_cwd and slurm "
    "run in the current directory and environment",
    "cpu": "CPUs per node",
    "gpu": "GPUs per node (nproc_per_node must not exceed it)",
    "memMB": "memory per node in MB",
    "h": "a registered named resource (takes precedence over cpu, gpu and memMB)",
    "env": "environment variables (K1=V1,K2=V2), over the defaults OMP_NUM_THREADS = CPUs "
    "per node / nproc_per_node and PYTHONUNBUFFERED=1",
    "mounts": "further mounts in TorchX syntax: type=bind,src=HOST,dst=JOB[,readonly] or "
    "type=volume,src=NAME,dst=JOB[,readonly]",
    "max_retries": "scheduler restarts of a failed job (a resumable stage continues from its "
    "latest checkpoint)",
    "resume": "pass --resume: continue from the output's latest checkpoint (a fresh output "
    "starts afresh); --resume False for a fresh start every time",
    "name": "job name: {experiment}/{run} or {run}",
}


def _launch_args_documented(component: Callable[..., specs.AppDef]) -> Callable[..., specs.AppDef]:
    """Appends the help of the shared launch parameters to `component`'s docstring Args."""
    lines = []
    for parameter in inspect.signature(component).parameters:
        if parameter in _SHARED_ARG_HELP:
            lines.append(f"    {parameter}: {_SHARED_ARG_HELP[parameter]}")
    component.__doc__ = inspect.cleandoc(component.__doc__ or "") + "\n" + "\n".join(lines) + "\n"
    return component


def _literal(value: str) -> str:
    """`value` escaped for TorchX macro substitution (string.Template): `$` becomes `$$`."""
    return value.replace("$", "$$")


def _mount(
    kind: str, source: str, destination: str, read_only: bool
) -> Union[specs.BindMount, specs.VolumeMount]:
    if kind == "bind":
        return specs.BindMount(src_path=source, dst_path=destination, read_only=read_only)
    return specs.VolumeMount(src=source, dst_path=destination, read_only=read_only)


def _parent(path: str) -> str:
    """The directory holding `path` (a job path, POSIX)."""
    return posixpath.dirname(path.rstrip("/")) or "/"


def _one_process(stage: str, j: str) -> None:
    """Refuses a `j` of more than one process for a stage that runs in one process."""
    _, max_nodes, nproc_per_node, _ = dist.parse_nnodes(j)
    if max_nodes * nproc_per_node != 1:
        raise ValueError(f"nasrec {stage} is one process: j must be 1x1, not {j!r}")


def _stage_app(
    stage: str,
    stage_args: Sequence[str],
    script_args: Sequence[str],
    *,
    stage_mounts: Sequence[Tuple[Optional[str], str, bool]],
    mount_type: str,
    j: str,
    image: str,
    cpu: int,
    gpu: int,
    memMB: int,
    h: Optional[str],
    env: Optional[Dict[str, str]],
    mounts: Optional[List[str]],
    max_retries: int,
    resume: bool,
    name: Optional[str],
) -> specs.AppDef:
    """The AppDef of `python -m nasrec_torchrec.cli STAGE STAGE_ARGS [--resume] SCRIPT_ARGS`
    (STAGE may be a group's command, "bench embeddings"; the role is named "bench-embeddings").

    `stage_mounts` holds (source or None, job path, read only) of the directories the component
    knows about; a None source mounts nothing.
    """
    if mount_type not in MOUNT_TYPES:
        raise ValueError(f"mount_type must be one of {', '.join(MOUNT_TYPES)}, not {mount_type!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, not {max_retries}")
    for source, destination, _ in stage_mounts:
        if source and not posixpath.isabs(destination):
            raise ValueError(
                f"a mounted directory needs an absolute job path: {destination!r} (from {source!r})"
            )
    for key in env or {}:
        if not _ENV_NAME.match(key):
            raise ValueError(f"env: {key!r} is not a valid environment variable name")
    nproc_per_node = dist.parse_nnodes(j)[2]
    command = stage.split()  # "bench embeddings": a command of a group

    argv = [*command, *stage_args]
    if resume:
        if stage not in RESUMABLE_STAGES:
            raise ValueError(f"nasrec {stage} has no --resume")
        argv.append("--resume")
    argv.extend(script_args)

    app = dist.ddp(
        *[_literal(arg) for arg in argv],
        m=MODULE,
        image=image,
        name=name or f"nasrec-{'-'.join(command)}",
        h=h,
        cpu=cpu,
        gpu=gpu,
        memMB=memMB,
        j=j,
        env={},
        max_retries=max_retries,
    )
    role = app.roles[0]
    role.name = "-".join(command)
    if role.resource.gpu > 0 and nproc_per_node > role.resource.gpu:
        raise ValueError(
            f"j={j}: {nproc_per_node} processes per node but only {role.resource.gpu} GPUs per node"
        )
    threads_per_rank = max(1, role.resource.cpu // nproc_per_node) if role.resource.cpu > 0 else 1
    role.env = {
        "OMP_NUM_THREADS": str(threads_per_rank),
        "PYTHONUNBUFFERED": "1",
        **role.env,
        **{key: _literal(value) for key, value in (env or {}).items()},
    }
    role.mounts = [
        _mount(mount_type, source, destination, read_only)
        for source, destination, read_only in stage_mounts
        if source
    ]
    if mounts:
        # The CLI splits a List[str] at commas; accept whole "type=...,src=...,dst=..." items too.
        role.mounts.extend(specs.parse_mounts([part for item in mounts for part in item.split(",")]))
    return app


@_launch_args_documented
def prepare(
    *script_args: str,
    output: str,
    raw_dir: str = "/raw",
    raw_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x1",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Splits and encodes raw CTR logs into Parquet shards (`nasrec prepare`): one process.

    The stage's own flags (--format, --input, --split, ...) go after --, e.g.
    `-- --format criteo --input /raw/train.txt`.

    Args:
        output: prepared dataset directory as the job sees it (--output)
        raw_dir: where the job sees the raw logs when raw_mount is given
        raw_mount: mount this (host path or volume) read-only at raw_dir
        output_mount: mount this (host path or volume) at the parent of output (the stage
            writes output atomically beside it)
    """
    _one_process("prepare", j)
    return _stage_app(
        "prepare", ["--output", output], script_args,
        stage_mounts=[(raw_mount, raw_dir, True), (output_mount, _parent(output), False)],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=False, name=name,
    )


@_launch_args_documented
def train_supernet(
    *script_args: str,
    data: str,
    output: str,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x2",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    resume: bool = True,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Trains the weight-sharing supernet (`nasrec train-supernet`), sharded over all ranks.

    Further flags after --, e.g. `-- --space nasrec-full --checkpoint-every 1000`.

    Args:
        data: prepared dataset directory as the job sees it (--data)
        output: run directory as the job sees it (--output): checkpoints/, metrics.jsonl,
            results.json
        data_mount: mount this (host path or volume) read-only at data
        output_mount: mount this (host path or volume) at output
    """
    return _stage_app(
        "train-supernet", ["--data", data, "--output", output], script_args,
        stage_mounts=[(data_mount, data, True), (output_mount, output, False)],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=resume, name=name,
    )


@_launch_args_documented
def train(
    *script_args: str,
    data: str,
    output: str,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x2",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    resume: bool = True,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Trains one model, a found architecture or a baseline (`nasrec train`).

    The model goes after --, e.g. `-- --arch /runs/found.json --full-tables` or
    `-- --model dlrm`.

    Args:
        data: prepared dataset directory as the job sees it (--data)
        output: run directory as the job sees it (--output): checkpoints/, metrics.jsonl,
            results.json
        data_mount: mount this (host path or volume) read-only at data
        output_mount: mount this (host path or volume) at output
    """
    return _stage_app(
        "train", ["--data", data, "--output", output], script_args,
        stage_mounts=[(data_mount, data, True), (output_mount, output, False)],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=resume, name=name,
    )


@_launch_args_documented
def search(
    *script_args: str,
    supernet: str,
    output: str,
    data: Optional[str] = None,
    supernet_mount: Optional[str] = None,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x1",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    resume: bool = True,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Searches a trained supernet for architectures (`nasrec search`), over all ranks.

    Every rank loads its own copy of the supernet and scores its share of each generation
    (`-j 1x2`: two processes, each with half the node's CPUs); rank 0 writes candidates.jsonl,
    search.json and best_architecture.json. At a fixed `-- --threads N` the candidates are
    the same on any number of ranks. The state is saved every generation, so a restarted job
    (or one submitted again with another -j) continues exactly. Further flags after --, e.g.
    `-- --method evolution --budget 500`.

    Args:
        supernet: the train-supernet run directory as the job sees it (--supernet)
        output: search directory as the job sees it (--output)
        data: prepared dataset directory as the job sees it (--data; default: the one the
            supernet trained on)
        supernet_mount: mount this (host path or volume) read-only at supernet
        data_mount: mount this (host path or volume) read-only at data
        output_mount: mount this (host path or volume) at output
    """
    stage_args = ["--supernet", supernet, "--output", output]
    if data is not None:
        stage_args += ["--data", data]
    return _stage_app(
        "search", stage_args, script_args,
        stage_mounts=[
            (supernet_mount, supernet, True), (data_mount, data or "", True),
            (output_mount, output, False),
        ],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=resume, name=name,
    )


@_launch_args_documented
def rank_study(
    *script_args: str,
    supernet: str,
    output: str,
    data: Optional[str] = None,
    supernet_mount: Optional[str] = None,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x1",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    name: Optional[str] = None,
) -> specs.AppDef:
    """How well the supernet ranks subnets trained from scratch (`nasrec rank-study`), over all
    ranks.

    Each rank scores its share of the subnets from its own copy of the supernet and trains
    them from scratch one after the other, each as on one rank; rank 0 writes the results. A
    rerun (or a restarted job) continues from the subnets already finished. Further flags
    after --, e.g. `-- --num-subnets 50`.

    Args:
        supernet: the train-supernet run directory as the job sees it (--supernet)
        output: study directory as the job sees it (--output)
        data: prepared dataset directory as the job sees it (--data; default: the one the
            supernet trained on)
        supernet_mount: mount this (host path or volume) read-only at supernet
        data_mount: mount this (host path or volume) read-only at data
        output_mount: mount this (host path or volume) at output
    """
    stage_args = ["--supernet", supernet, "--output", output]
    if data is not None:
        stage_args += ["--data", data]
    return _stage_app(
        "rank-study", stage_args, script_args,
        stage_mounts=[
            (supernet_mount, supernet, True), (data_mount, data or "", True),
            (output_mount, output, False),
        ],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=False, name=name,
    )


@_launch_args_documented
def retrain(
    *script_args: str,
    search: str,
    output: str,
    data: Optional[str] = None,
    search_mount: Optional[str] = None,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x2",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    resume: bool = True,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Retrains the search's top-k from scratch, spread over all ranks, and picks the best
    by validation (`nasrec retrain`).

    Each rank trains its share of the candidates one after the other, each as on one rank
    (the results do not depend on -j); rank 0 writes retrain.json. Finished candidates are
    skipped and an interrupted one resumes from its latest checkpoint. Further flags after
    --, e.g. `-- --top-k 5 --checkpoint-every 1000`.

    Args:
        search: the search directory as the job sees it (--search; its candidates.jsonl)
        output: retrain directory as the job sees it (--output): retrain.json,
            best_architecture.json, candidates/NN/
        data: prepared dataset directory as the job sees it (--data; default: the one the
            search recorded)
        search_mount: mount this (host path or volume) read-only at search
        data_mount: mount this (host path or volume) read-only at data
        output_mount: mount this (host path or volume) at output
    """
    stage_args = ["--search", search, "--output", output]
    if data is not None:
        stage_args += ["--data", data]
    return _stage_app(
        "retrain", stage_args, script_args,
        stage_mounts=[
            (search_mount, search, True), (data_mount, data or "", True),
            (output_mount, output, False),
        ],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=resume, name=name,
    )


@_launch_args_documented
def final(
    *script_args: str,
    arch: str,
    data: str,
    output: str,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x2",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    resume: bool = True,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Trains the found architecture with full-size tables, sharded over all ranks, and
    reports its test metrics (`nasrec final`).

    A finished run is not retrained; an interrupted one resumes from its latest checkpoint.
    Further flags after --, e.g. `-- --protocol bars --epochs 30 --patience 2`; with
    `--repeats 3 --spread` the three seeds train side by side, one per rank.

    Args:
        arch: architecture JSON as the job sees it (--arch), e.g. retrain's
            best_architecture.json (on a volume given with --mounts)
        data: prepared dataset directory as the job sees it (--data)
        output: final run directory as the job sees it (--output): results.json, report.md,
            architecture.json, checkpoints/
        data_mount: mount this (host path or volume) read-only at data
        output_mount: mount this (host path or volume) at output
    """
    return _stage_app(
        "final", ["--arch", arch, "--data", data, "--output", output], script_args,
        stage_mounts=[(data_mount, data, True), (output_mount, output, False)],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=resume, name=name,
    )


@_launch_args_documented
def pipeline(
    *script_args: str,
    output: str,
    data: Optional[str] = None,
    data_mount: Optional[str] = None,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x2",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    resume: bool = True,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Runs the whole search in one job (`nasrec pipeline`): prepare or synth,
    train-supernet, search, retrain, final, all under output.

    Training stages are sharded over all ranks; the search and the retraining spread their
    candidates over the ranks; prepare runs on rank 0 while the others wait (several nodes
    need output on shared storage). Finished stages are skipped
    and an interrupted one resumes, so a restarted job continues. The experiment goes after
    --, e.g. `-- --config specs/experiments/demo.yaml --set=search.budget=30
    --set=retrain.top_k=5` (config paths are relative to the job's working directory: the
    checkout, also in the image; the torchx CLI refuses an option repeated verbatim, hence
    `--set=...`).

    Args:
        output: the pipeline's directory as the job sees it (--output):
            data/, supernet/, search/, retrain/, final/, pipeline.json
        data: a prepared dataset directory as the job sees it (--data; default: output/data,
            made by --synth or the config's prepare section)
        data_mount: mount this (host path or volume) read-only at data (a prepared dataset)
        output_mount: mount this (host path or volume) at output
    """
    stage_args = ["--output", output]
    if data is not None:
        stage_args += ["--data", data]
    return _stage_app(
        "pipeline", stage_args, script_args,
        stage_mounts=[(data_mount, data or "", True), (output_mount, output, False)],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=resume, name=name,
    )


@_launch_args_documented
def embedding_benchmark(
    *script_args: str,
    output: str,
    output_mount: Optional[str] = None,
    mount_type: str = "bind",
    j: str = "1x2",
    image: str = DEFAULT_IMAGE,
    cpu: int = 2,
    gpu: int = 0,
    memMB: int = 8192,
    h: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    mounts: Optional[List[str]] = None,
    max_retries: int = 0,
    name: Optional[str] = None,
) -> specs.AppDef:
    """Embedding tables as they grow: samples/s and memory per rank of each sharding type over
    all ranks, beside the raw FBGEMM kernel in one process (`nasrec bench embeddings`).

    The sweep goes after --, e.g. `-- --total-rows 1e7 1e8 --sharding-types table_wise
    row_wise --max-memory-gb 50` (give the job the memory: --memMB). Writes
    embedding_benchmark.json, .md and .png to output.

    Args:
        output: results folder as the job sees it (--output)
        output_mount: mount this (host path or volume) at output
    """
    return _stage_app(
        "bench embeddings", ["--output", output], script_args,
        stage_mounts=[(output_mount, output, False)],
        mount_type=mount_type, j=j, image=image, cpu=cpu, gpu=gpu, memMB=memMB, h=h, env=env,
        mounts=mounts, max_retries=max_retries, resume=False, name=name,
    )
