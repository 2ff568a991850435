"""The logging policy of a command: our lines at INFO, the stack's at WARNING, its known
warnings hidden by message; --verbose (NASREC_VERBOSE=1) shows everything."""

from __future__ import annotations

import logging
import json
import os
import re
import subprocess
import sys
import warnings
from typing import Iterator

import pytest

from nasrec_torchrec.logs import (
    CPP_LOG_LEVEL_VARIABLE,
    KNOWN_LOG_RECORDS,
    OWN_LOGGER,
    VERBOSE_VARIABLE,
    setup_logging,
    verbose_from_environment,
)

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.MULTILINE)
# Lines of the stack that a default-verbosity command must not print.
THIRD_PARTY_LINES = ("SplitTableBatchedEmbeddingBagsCodegen", "Successfully loaded",
                     "torchrec.distributed.planner", "Total proposals to search",
                     "FutureWarning", "UserWarning", "is_fx_tracing", "TopologyFactory",
                     "param | sharding type", "WARNING")
# What TorchRec, torch and FBGEMM say about data-parallel tables (Adam on CPU; Frappe's).
DATA_PARALLEL_LINES = ("Sharding spec not found for model.embedding_bag_collection.t_C1",
                       "Sharding Type is data_parallel, caching params will be ignored",
                       "`broadcast_buffers` is deprecated",
                       "an autograd kernel was not registered")


@pytest.fixture
def restored_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what setup_logging does to the loggers, the warning filters and the environment."""
    monkeypatch.delenv(VERBOSE_VARIABLE, raising=False)
    monkeypatch.delenv(CPP_LOG_LEVEL_VARIABLE, raising=False)
    loggers = [logging.getLogger(), logging.getLogger(OWN_LOGGER),
               *map(logging.getLogger, KNOWN_LOG_RECORDS)]
    saved = [(logger, logger.level, list(logger.filters), list(logger.handlers))
             for logger in loggers]
    with warnings.catch_warnings():
        yield
    for logger, level, filters, handlers in saved:
        logger.setLevel(level)
        logger.filters[:] = filters
        logger.handlers[:] = handlers


def _enabled(name: str, level: int) -> bool:
    return logging.getLogger(name).isEnabledFor(level)


def test_default_keeps_our_info_and_the_stacks_warnings(restored_logging: None) -> None:
    setup_logging(verbose=False)
    assert _enabled("nasrec_torchrec.train.trainer", logging.INFO)
    assert not _enabled("nasrec_torchrec.train.trainer", logging.DEBUG)
    for name in ("", "torchrec.distributed.planner.stats", "fbgemm_gpu", "torchx",
                 "torch.distributed.elastic"):  # "": FBGEMM logs on the root logger
        assert not _enabled(name, logging.INFO), name
        assert _enabled(name, logging.WARNING), name
    assert VERBOSE_VARIABLE not in os.environ
    assert CPP_LOG_LEVEL_VARIABLE not in os.environ


def test_verbose_enables_debug_everywhere_and_tells_child_processes(
        restored_logging: None) -> None:
    setup_logging(verbose=False)
    setup_logging(verbose=True)  # switches the mode
    for name in ("", "nasrec_torchrec.train.trainer", "torchrec.distributed.planner.stats",
                 "fbgemm_gpu"):
        assert _enabled(name, logging.DEBUG), name
    assert os.environ[VERBOSE_VARIABLE] == "1" and verbose_from_environment()
    assert os.environ[CPP_LOG_LEVEL_VARIABLE] == "INFO"


def test_verbose_keeps_the_users_cpp_log_level(restored_logging: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPP_LOG_LEVEL_VARIABLE, "ERROR")
    setup_logging(verbose=True)
    assert os.environ[CPP_LOG_LEVEL_VARIABLE] == "ERROR"


@pytest.mark.parametrize("value, verbose", [("", False), ("0", False), ("1", True),
                                            ("yes", True)])
def test_verbose_from_environment(monkeypatch: pytest.MonkeyPatch, value: str,
                                  verbose: bool) -> None:
    monkeypatch.setenv(VERBOSE_VARIABLE, value)
    assert verbose_from_environment() is verbose


def _passes(logger_name: str, message: str) -> bool:
    logger = logging.getLogger(logger_name)
    record = logger.makeRecord(logger_name, logging.WARNING, __file__, 1, message, (), None)
    return bool(logger.filter(record))


def test_known_records_are_hidden_by_message_only_by_default(restored_logging: None) -> None:
    planner_types = "torchrec.distributed.planner.types"
    known = ("The topology was constructed directly rather than via "
             "TopologyFactory.create_topology().")
    setup_logging(verbose=False)
    assert not _passes(planner_types, known)
    assert not _passes("torch.fx._symbolic_trace", "is_fx_tracing will return true for both")
    assert _passes(planner_types, "Some other planner warning")
    # data-parallel tables (nasrec bench embeddings --sharding-types data_parallel)
    assert not _passes("root", "Sharding spec not found for ebc.t_f0")
    assert _passes("root", "Some other root warning")
    assert not _passes("torchrec.distributed.utils",
                       "Sharding Type is data_parallel, caching params will be ignored")
    assert not _passes("root", "Sharding spec not found for model.embedding_bag_collection.t_a")
    assert _passes("root", "Sharding spec of another kind")
    assert not _passes("torchrec.distributed.utils",
                       "Sharding Type is data_parallel, caching params will be ignored")
    assert _passes("torchrec.distributed.utils",
                   "Compute Kernel is fused_uvm, caching params will be ignored")
    setup_logging(verbose=False)  # idempotent: one filter per logger
    assert len(logging.getLogger(planner_types).filters) == 1
    setup_logging(verbose=True)
    assert _passes(planner_types, known)


def _shown(message: str, category: type[Warning], module: str) -> bool:
    with warnings.catch_warnings(record=True) as shown:
        warnings.warn_explicit(message, category, "file.py", 1, module=module)
    return bool(shown)


def test_known_warnings_are_hidden_by_message_and_module(restored_logging: None) -> None:
    warnings.resetwarnings()
    setup_logging(verbose=False)
    warnings.filterwarnings("always", append=True)  # after ours: show everything else
    buffers = "`broadcast_buffers` is deprecated. Use `forward_sync_buffers` instead."
    assert not _shown(buffers, FutureWarning, "torchrec.distributed.model_parallel")
    assert not _shown(buffers, FutureWarning, "torchrec.distributed.embeddingbag")
    assert _shown(buffers, FutureWarning, "somewhere.else")
    autograd = ("fbgemm::dense_embedding_codegen_lookup_function: an autograd kernel was not "
                "registered to the Autograd key(s) but we are trying to backprop through it.")
    assert not _shown(autograd, UserWarning, "torch.autograd.graph")
    assert _shown(autograd.replace("dense_embedding", "other"), UserWarning,
                  "torch.autograd.graph")
    assert _shown("Another deprecation", FutureWarning, "torchrec.distributed.model_parallel")
    assert not _shown(buffers, FutureWarning, "torchrec.distributed.embeddingbag")
    assert not _shown("`torch.distributed.all_gather_into_tensor` is deprecated. Please use "
                      "`torch.distributed.all_gather_single` instead.", FutureWarning,
                      "torch.distributed.c10d_logger")
    assert _shown("`torch.distributed.all_gather_into_tensor` is deprecated.", FutureWarning,
                  "my.module")
    assert not _shown("fbgemm::dense_embedding_codegen_lookup_function: an autograd kernel was "
                      "not registered to the Autograd key(s)", UserWarning, "torch.autograd.graph")
    sharded = "Please use DTensor instead and we are deprecating ShardedTensor."
    assert not _shown(sharded, FutureWarning, "nasrec_torchrec.embeddings")
    assert _shown(sharded, UserWarning, "nasrec_torchrec.embeddings")
    assert not _shown("torch.distributed is disabled, unavailable or uninitialized, assuming "
                      "the intent is to load in a single process.", UserWarning,
                      "torch.distributed.checkpoint.utils")


def test_command_line_filters_win_over_ours(restored_logging: None) -> None:
    warnings.resetwarnings()
    warnings.filterwarnings("error", category=FutureWarning)  # as -W error::FutureWarning
    setup_logging(verbose=False)
    with pytest.raises(FutureWarning):
        warnings.warn_explicit("`broadcast_buffers` is deprecated", FutureWarning, "file.py", 1,
                               module="torchrec.distributed.model_parallel")


def _run(command: list[str], verbose_variable: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [REPOSITORY,
                                                        os.environ.get("PYTHONPATH")])))
    for name in (VERBOSE_VARIABLE, CPP_LOG_LEVEL_VARIABLE, "PYTHONWARNINGS"):
        env.pop(name, None)
    if verbose_variable:
        env[VERBOSE_VARIABLE] = verbose_variable
    return subprocess.run([sys.executable, "-m", *command], env=env, capture_output=True,
                          text=True, timeout=300)


def _train_args(data: str, output: str) -> list[str]:
    return ["--model", "dlrm", "--data", data, "--output", output, "--max-steps", "3",
            "--batch-size", "64", "--threads", "1", "--no-progress"]


@pytest.mark.parametrize("optimizer", ["adagrad", "adam"])  # adam on CPU: data-parallel
def test_a_default_command_prints_our_lines_only(synthetic_criteo: str, tmp_path,
                                                 optimizer: str) -> None:
    result = _run(["nasrec_torchrec.cli", "train", "--optimizer", optimizer,
                   *_train_args(synthetic_criteo, str(tmp_path / "run"))])
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert [line for line in THIRD_PARTY_LINES + DATA_PARALLEL_LINES if line in output] == []
    assert "INFO embeddings: sharding plan: 26 tables (" in result.stderr
    assert ("26 data_parallel" in result.stderr) == (optimizer == "adam")
    assert "INFO train.trainer: val: log loss" in result.stderr
    assert "3 steps, val log loss" in result.stdout
    assert not TIMESTAMP.search(result.stderr)


def test_a_verbose_stage_prints_the_stacks_lines_with_timestamps(synthetic_criteo: str,
                                                                tmp_path) -> None:
    # A pipeline stage in a fresh process: verbose through NASREC_VERBOSE, as its parent sets.
    run_file = tmp_path / "supernet.run.json"
    run_file.write_text(json.dumps({"space": "nasrec-small", "train": {
        "data": synthetic_criteo, "output": str(tmp_path / "run"), "max_steps": 3,
        "batch_size": 64, "threads": 1, "progress_bar": False}}))
    result = _run(["nasrec_torchrec.pipeline.run_stage", "train-supernet", str(run_file)],
                  verbose_variable="1")
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ("SplitTableBatchedEmbeddingBagsCodegen Arguments",
                 "INFO torchrec.distributed.planner.stats", "FutureWarning", "is_fx_tracing",
                 "TopologyFactory", "DEBUG nasrec_torchrec.embeddings: sharding plan:\n"):
        assert line in result.stderr, line
    assert TIMESTAMP.search(result.stderr)


def test_verbose_shows_what_is_hidden_about_data_parallel_tables(synthetic_criteo: str,
                                                                 tmp_path) -> None:
    result = _run(["nasrec_torchrec.cli", "--verbose", "train", "--optimizer", "adam",
                   *_train_args(synthetic_criteo, str(tmp_path / "run"))])
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in DATA_PARALLEL_LINES if line not in result.stderr] == []


def test_an_error_is_still_one_line_after_our_own(tmp_path) -> None:
    result = _run(["nasrec_torchrec.cli", "train",
                   *_train_args(str(tmp_path / "missing"), str(tmp_path / "run"))])
    assert result.returncode == 2
    *before, last = result.stderr.splitlines()
    assert last.startswith("nasrec train: error: ") and "missing" in last
    assert all(line.startswith("INFO ") for line in before), before
