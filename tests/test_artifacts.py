"""Atomic JSON / JSONL I/O and its errors (pure Python)."""

import json
import os

import pytest

from nasrec_torchrec.artifacts import (append_jsonl, iter_jsonl, read_json, read_jsonl,
                                       rewrite_jsonl, write_json, write_text)
from nasrec_torchrec.errors import NASRecError


def test_write_json_round_trips_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "sub" / "results.json")
    write_json(path, {"steps": 3, "where": tmp_path})
    assert read_json(path) == {"steps": 3, "where": str(tmp_path)}
    assert os.listdir(tmp_path / "sub") == ["results.json"]


def test_read_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n"a": 1,\n}')
    with pytest.raises(NASRecError, match=r"bad.json:3: invalid JSON"):
        read_json(str(path))
    with pytest.raises(NASRecError, match=r"missing.json: not found"):
        read_json(str(tmp_path / "missing.json"))


def test_jsonl_append_read_and_rewrite(tmp_path):
    path = str(tmp_path / "candidates.jsonl")
    append_jsonl(path, [{"i": 0}, {"i": 1}])
    append_jsonl(path, [{"i": 2}])
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}, {"i": 2}]
    rewrite_jsonl(path, [{"i": 2}])
    assert [line for line in open(path)] == [json.dumps({"i": 2}) + "\n"]


def test_jsonl_fault_names_its_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"i": 0}\n\n{"i": \n')
    with pytest.raises(NASRecError, match=r"c.jsonl:3: invalid JSON"):
        list(iter_jsonl(str(path)))


def test_write_text_replaces(tmp_path):
    path = str(tmp_path / "report.md")
    write_text(path, "a\n")
    write_text(path, "b\n")
    assert open(path).read() == "b\n"
