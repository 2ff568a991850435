"""The files stages write and read: their names, and atomic JSON / JSONL / text I/O.

Pure Python (no torch). Every file a stage hands to the next is named here once; every
write goes to a temporary name and is renamed when complete, so a reader never sees half a
file. Read faults are `NASRecError`s naming the file (and line).

Example::

    write_json(os.path.join(run_dir, RESULTS_FILE), {"steps": 10})
    read_json(os.path.join(run_dir, RESULTS_FILE))["steps"]  # 10
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterable, Iterator

from nasrec_torchrec.errors import NASRecError

# dataset (`nasrec prepare` / `nasrec synth`)
SCHEMA_FILE = "schema.json"
STATS_FILE = "stats.json"
# a training run (`train-supernet`, `train`, every run of `retrain` / `final`)
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
EARLY_STOPPING_FILE = "early_stopping.json"
PROBES_FILE = "probes.jsonl"  # a supernet run's probe subnets
ARCHITECTURE_FILE = "architecture.json"
# a search
CANDIDATES_FILE = "candidates.jsonl"
SEARCH_SUMMARY_FILE = "search.json"
SEARCH_STATE_FILE = "search_state.json"
SEARCH_RUN_FILE = "search_run.json"  # the settings it runs with (a resume must keep them)
BEST_ARCHITECTURE_FILE = "best_architecture.json"
# retrain, final, pipeline
RETRAIN_FILE = "retrain.json"
REPORT_FILE = "report.md"
REPEAT_DIR = "repeat_{index}"  # a final run's repeat with seed + index (`--repeats`), inside it
PIPELINE_FILE = "pipeline.json"
# an exported model (`nasrec export`)
EXPORTED_PROGRAM_FILE = "model.pt2"
EXPORT_MANIFEST_FILE = "manifest.json"


def make_directory(path: str) -> str:
    """Create the folder `path` (and its parents) if missing; returns it. A folder that
    cannot be created is a `NASRecError` naming it."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise NASRecError(f"{path}: cannot create the folder: {error.strerror or error}") \
            from None
    return path


def _replace_atomically(path: str, text: str) -> None:
    make_directory(os.path.dirname(os.path.abspath(path)))
    staging = f"{path}.tmp"
    try:
        with open(staging, "w") as handle:
            handle.write(text)
        os.replace(staging, path)
    except OSError as error:
        raise NASRecError(f"{path}: cannot write: {error.strerror or error}") from None


@contextlib.contextmanager
def staged_path(path: str) -> Iterator[str]:
    """A temporary name beside `path` to write a file of any kind to; it becomes `path` when
    the block ends without an exception, and is removed otherwise."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    staging = f"{path}.tmp"
    try:
        yield staging
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
    os.replace(staging, path)


def write_text(path: str, text: str) -> str:
    """Write `text` to `path` atomically; returns the path."""
    _replace_atomically(path, text)
    return path


def write_json(path: str, data: Any, indent: int | None = 2) -> str:
    """Write `data` as JSON atomically (values JSON cannot hold are written as `str`)."""
    _replace_atomically(path, json.dumps(data, indent=indent, default=str))
    return path


def read_json(path: str) -> Any:
    """A JSON file's content; a missing or malformed file is a `NASRecError` naming it."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise NASRecError(f"{path}: not found") from None
    except IsADirectoryError:
        raise NASRecError(f"{path}: is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise NASRecError(f"{path}: not a text file") from None
    except json.JSONDecodeError as error:
        raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None


def append_jsonl(path: str, records: Iterable[Any]) -> None:
    """Append one JSON line per record to `path` (created with its folder if missing)."""
    make_directory(os.path.dirname(os.path.abspath(path)))
    try:
        with open(path, "a") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in records)
    except OSError as error:
        raise NASRecError(f"{path}: cannot write: {error.strerror or error}") from None


def iter_jsonl(path: str) -> Iterator[tuple[int, Any]]:
    """`(line number, record)` of every non-empty line of a JSONL file."""
    try:
        with open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    raise NASRecError(f"{path}:{number}: invalid JSON: {error.msg}") from None
    except FileNotFoundError:
        raise NASRecError(f"{path}: not found") from None


def read_jsonl(path: str) -> list[Any]:
    """The records of a JSONL file, in order."""
    return [record for _, record in iter_jsonl(path)]


def rewrite_jsonl(path: str, records: Iterable[Any]) -> None:
    """Replace a JSONL file's lines with `records`, atomically."""
    _replace_atomically(path, "".join(json.dumps(record) + "\n" for record in records))
