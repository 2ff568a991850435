"""The TorchX components of launchers/components.py: what they run, with which resources, env
and mounts, and that no user string is split, expanded or executed on its way to the stage."""

import argparse
import importlib
import shlex
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Optional

import pytest
from torchx import specs
from torchx.runner import get_runner
from torchx.specs.file_linter import get_fn_docstring
from torchx.specs.finder import get_component

from launcher_cases import COMMAND_WORDS, COMPONENT_NAMES, COMPONENTS_FILE, HOSTILE

# The flags each component sets from its own parameters (besides --resume).
PATH_PARAMETERS: Dict[str, List[str]] = {
    "prepare": ["output"],
    "train_supernet": ["data", "output"],
    "train": ["data", "output"],
    "search": ["supernet", "output", "data"],
    "rank_study": ["supernet", "output", "data"],
    "retrain": ["search", "output", "data"],
    "final": ["arch", "data", "output"],
    "pipeline": ["output", "data"],
    "embedding_benchmark": ["output"],
}


def _build(components: ModuleType, name: str, *script_args: str, **kwargs: object) -> specs.AppDef:
    paths = {parameter: f"/job/{parameter}" for parameter in PATH_PARAMETERS[name]}
    return getattr(components, name)(*script_args, **{**paths, **kwargs})


def _stage_argv(app: specs.AppDef) -> List[str]:
    """The argv of `python -m nasrec_torchrec.cli` in the AppDef's `bash -c` torchrun line."""
    (role,) = app.roles
    assert role.entrypoint == "bash" and role.args[0] == "-c"
    torchrun_argv = shlex.split(role.args[1])
    assert torchrun_argv[0] == "torchrun"
    module_at = torchrun_argv.index("-m")
    assert torchrun_argv[module_at + 1] == "nasrec_torchrec.cli"
    return torchrun_argv[module_at + 2:]


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_component_passes_the_torchx_linter_and_documents_every_parameter(name: str) -> None:
    component = get_component(f"{COMPONENTS_FILE}:{name}")  # raises on linter errors
    description, parameter_help = get_fn_docstring(component.fn)
    assert "TIP" not in description
    for parameter, help_text in parameter_help.items():
        assert help_text.strip() and "TBD" not in help_text, f"{name}: {parameter} undocumented"


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_component_runs_its_stage_with_its_paths_then_the_passed_through_args(
    components: ModuleType, name: str
) -> None:
    app = _build(components, name, "--seed", "3")
    stage = app.roles[0].name
    expected = list(COMMAND_WORDS.get(name, [stage]))
    for parameter in PATH_PARAMETERS[name]:
        expected += [f"--{parameter}", f"/job/{parameter}"]
    if stage in components.RESUMABLE_STAGES:
        expected.append("--resume")
    assert _stage_argv(app) == expected + ["--seed", "3"]
    if stage in components.RESUMABLE_STAGES:
        assert "--resume" not in _stage_argv(_build(components, name, resume=False))


def _stage_parser(stage: str) -> Optional[argparse.ArgumentParser]:
    """The parser of `nasrec STAGE`: registered in the CLI, or a command module not yet
    registered; None when the stage is not written yet."""
    from nasrec_torchrec.cli import COMMANDS

    module_name = COMMANDS.get(stage, stage.replace("-", "_"))
    try:
        module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
    except ModuleNotFoundError as error:
        if error.name != f"nasrec_torchrec.commands.{module_name}":
            raise
        return None
    parser = argparse.ArgumentParser(prog=f"nasrec {stage}", exit_on_error=False)
    module.add_arguments(parser)
    return parser


def test_components_stage_argv_is_accepted_by_the_stage_parsers(components: ModuleType) -> None:
    checked = []
    for name in COMPONENT_NAMES:
        stage, *argv = _stage_argv(_build(components, name))
        parser = _stage_parser(stage)
        if parser is None:
            continue  # stage not written yet
        has_resume = any("--resume" in action.option_strings for action in parser._actions)
        assert has_resume == (stage in components.RESUMABLE_STAGES), stage
        # Fill the stage's other required options so only the component's own flags are judged.
        for action in parser._actions:  # (a group's subcommand is in argv: positional)
            if action.required and action.option_strings \
                    and not set(action.option_strings) & set(argv):
                argv += [action.option_strings[0], (action.choices and next(iter(action.choices))) or "x"]
        assert parser.parse_known_args(argv)[1] == [], f"{stage}: {argv}"
        checked.append(stage)
    assert {"prepare", "train-supernet", "train", "search", "rank-study", "retrain", "final",
            "pipeline", "bench"} <= set(checked)


def test_resources_replicas_and_retries_follow_the_arguments(components: ModuleType) -> None:
    app = components.train_supernet(data="/d", output="/o", j="3x4", cpu=16, gpu=4, memMB=64000,
                                    max_retries=2, image="registry/nasrec:1")
    (role,) = app.roles
    assert (role.num_replicas, role.min_replicas, role.max_retries) == (3, 3, 2)
    assert (role.resource.cpu, role.resource.gpu, role.resource.memMB) == (16, 4, 64000)
    assert role.image == "registry/nasrec:1"
    assert "--nnodes 3 --nproc_per_node 4" in role.args[1]
    elastic = components.train_supernet(data="/d", output="/o", j="1:4x2").roles[0]
    assert (elastic.min_replicas, elastic.num_replicas) == (1, 4)


def test_named_resource_takes_precedence(components: ModuleType) -> None:
    named = specs.named_resources["aws_p3.2xlarge"]
    role = components.train(data="/d", output="/o", j="1x1", h="aws_p3.2xlarge").roles[0]
    assert (role.resource.cpu, role.resource.gpu, role.resource.memMB) == (
        named.cpu, named.gpu, named.memMB)
    assert role.env["OMP_NUM_THREADS"] == str(named.cpu)


def test_env_defaults_one_thread_per_cpu_share_and_user_env_wins(components: ModuleType) -> None:
    env = components.train_supernet(data="/d", output="/o", j="1x2", cpu=2).roles[0].env
    assert env["OMP_NUM_THREADS"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    env = components.train(data="/d", output="/o", j="2x4", cpu=32).roles[0].env
    assert env["OMP_NUM_THREADS"] == "8"
    env = components.train(data="/d", output="/o", j="2x4", cpu=32,
                           env={"OMP_NUM_THREADS": "3", "NCCL_DEBUG": "INFO"}).roles[0].env
    assert env["OMP_NUM_THREADS"] == "3" and env["NCCL_DEBUG"] == "INFO"
    assert components.search(supernet="/s", output="/o", cpu=8).roles[0].env["OMP_NUM_THREADS"] == "8"


def test_mounts_put_data_read_only_and_output_read_write_at_the_job_paths(
    components: ModuleType,
) -> None:
    role = components.search(
        data="/data/criteo", supernet="/runs/supernet", output="/runs/search",
        data_mount="/mnt/criteo", supernet_mount="/mnt/supernet", output_mount="/mnt/search",
        mounts=["type=bind,src=/mnt/cache,dst=/cache,readonly"],
    ).roles[0]
    assert role.mounts == [
        specs.BindMount("/mnt/supernet", "/runs/supernet", read_only=True),
        specs.BindMount("/mnt/criteo", "/data/criteo", read_only=True),
        specs.BindMount("/mnt/search", "/runs/search", read_only=False),
        specs.BindMount("/mnt/cache", "/cache", read_only=True),
    ]
    role = components.train_supernet(data="/data", output="/runs/s", data_mount="criteo-pvc",
                                     mount_type="volume").roles[0]
    assert role.mounts == [specs.VolumeMount("criteo-pvc", "/data", read_only=True)]
    assert components.train_supernet(data="/data", output="/runs/s").roles[0].mounts == []


def test_prepare_is_one_process_without_resume_and_mounts_its_output_parent(
    components: ModuleType,
) -> None:
    app = components.prepare("--format", "criteo", "--input", "/raw/train.txt",
                             output="/data/criteo", raw_mount="/mnt/raw", output_mount="/mnt/data")
    (role,) = app.roles
    assert "--nnodes 1 --nproc_per_node 1" in role.args[1]
    assert _stage_argv(app) == ["prepare", "--output", "/data/criteo", "--format", "criteo",
                                "--input", "/raw/train.txt"]
    # prepare renames a finished sibling directory into place: its output cannot be a mount
    assert role.mounts == [specs.BindMount("/mnt/raw", "/raw", read_only=True),
                           specs.BindMount("/mnt/data", "/data", read_only=False)]
    with pytest.raises(ValueError, match="one process"):
        components.prepare(output="/data/criteo", j="1x2")


@pytest.mark.parametrize("name", ["search", "rank_study"])
def test_supernet_scoring_stages_default_to_one_process_and_data_is_optional(
    components: ModuleType, name: str
) -> None:
    app = getattr(components, name)(supernet="/runs/supernet", output="/runs/out")
    assert "--nnodes 1 --nproc_per_node 1" in app.roles[0].args[1]
    assert "--data" not in _stage_argv(app)


@pytest.mark.parametrize("name", ["search", "rank_study", "retrain"])
def test_candidate_stages_run_under_torchrun_on_the_ranks_asked_for(
    components: ModuleType, name: str
) -> None:
    """search, rank-study and retrain spread their candidates over the ranks: -j is theirs
    as it is train_supernet's, and each rank gets its share of the node's CPUs."""
    app = _build(components, name, j="2x4", cpu=8)
    (role,) = app.roles
    assert (role.num_replicas, role.min_replicas) == (2, 2)
    assert "--nnodes 2 --nproc_per_node 4" in role.args[1]
    assert role.env["OMP_NUM_THREADS"] == "2"
    assert _stage_argv(app)[0] == role.name == name.replace("_", "-")
    elastic = _build(components, name, j="1:3x2").roles[0]
    assert (elastic.min_replicas, elastic.num_replicas) == (1, 3)


def test_pipeline_runs_on_all_ranks_and_data_is_optional(components: ModuleType) -> None:
    app = components.pipeline("--config", "specs/experiments/demo.yaml", output="/runs/demo",
                              j="2x2")
    assert "--nnodes 2 --nproc_per_node 2" in app.roles[0].args[1]
    assert _stage_argv(app) == ["pipeline", "--output", "/runs/demo", "--resume",
                                "--config", "specs/experiments/demo.yaml"]


def test_embedding_benchmark_runs_on_all_ranks_without_resume(components: ModuleType) -> None:
    app = components.embedding_benchmark("--total-rows", "1e7", "1e8", output="/runs/bench",
                                         output_mount="bench-pvc", mount_type="volume",
                                         j="2x4", memMB=64000)
    (role,) = app.roles
    assert (app.name, role.name) == ("nasrec-bench-embeddings", "bench-embeddings")
    assert "--nnodes 2 --nproc_per_node 4" in role.args[1]
    assert role.resource.memMB == 64000
    assert _stage_argv(app) == ["bench", "embeddings", "--output", "/runs/bench",
                                "--total-rows", "1e7", "1e8"]
    assert role.mounts == [specs.VolumeMount("bench-pvc", "/runs/bench", read_only=False)]


def test_retrain_takes_data_from_the_search_unless_given(components: ModuleType) -> None:
    app = components.retrain(search="/runs/search", output="/runs/retrain", j="2x2")
    assert _stage_argv(app) == ["retrain", "--search", "/runs/search", "--output", "/runs/retrain",
                                "--resume"]


@pytest.mark.parametrize("kwargs, message", [
    ({"mount_type": "nfs"}, "mount_type"),
    ({"data": "relative/data", "data_mount": "/mnt/data"}, "absolute"),
    ({"j": "1x4", "gpu": 2}, "GPUs"),
    ({"j": "two"}, "Invalid format"),
    ({"env": {"BAD-NAME": "1"}}, "environment variable"),
    ({"max_retries": -1}, "max_retries"),
])
def test_bad_arguments_are_refused_with_the_reason(
    components: ModuleType, kwargs: Dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        components.train_supernet(**{"data": "/d", "output": "/o", **kwargs})


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_hostile_strings_reach_the_stage_as_one_intact_argv_element_and_run_nothing(
    components: ModuleType, name: str, run_with_fake_torchrun: Callable[..., List[List[str]]],
    tmp_path: Path,
) -> None:
    paths = {parameter: f"/job/{parameter} {HOSTILE}" for parameter in PATH_PARAMETERS[name]}
    app = getattr(components, name)("--note", HOSTILE, HOSTILE, env={"NASREC_NOTE": HOSTILE},
                                    **paths)
    # local_cwd's request is the argv and env it Popens, after TorchX's macro substitution
    with get_runner() as runner:
        request = runner.dryrun(app, "local_cwd", cfg={"log_dir": str(tmp_path / "logs")}).request
    (replica,) = request.role_params[app.roles[0].name]
    assert replica.env["NASREC_NOTE"] == HOSTILE

    (torchrun_argv,) = run_with_fake_torchrun(replica.args)
    stage_argv = torchrun_argv[torchrun_argv.index("-m") + 2:]
    for parameter, path in paths.items():
        assert stage_argv[stage_argv.index(f"--{parameter}") + 1] == path
    assert stage_argv[-3:] == ["--note", HOSTILE, HOSTILE]
    assert not list(tmp_path.glob("pwned*")) and not (tmp_path / "out").exists()
