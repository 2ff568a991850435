"""Inputs a reader must refuse or take as they come: gzip-compressed text read directly,
binary files, duplicate column names, Parquet columns of lists, the rule for NaN and inf."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nasrec_torchrec.data.formats import ReaderOptions, open_reader
from nasrec_torchrec.errors import NASRecError


def criteo_text(rows: int) -> str:
    return "".join("\t".join([str(i % 2), *(str(i + j) for j in range(13)),
                              *(f"{(i * 7 + j) % 50:08x}" for j in range(26))]) + "\n"
                   for i in range(rows))


def read(format_name: str, path: Path, **options: object) -> list:
    reader = open_reader(format_name, ReaderOptions(**options), str(path))
    return list(reader.chunks(str(path)))


@pytest.mark.parametrize("format_name, text", [
    ("criteo", criteo_text(40)),
    ("csv", "label,a,b\n1,x,3\n0,y,4\n"),
    ("avazu", "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,"
              "app_domain,app_category,device_id,device_ip,device_model,device_type,"
              "device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21\n"
     + "1,0," + ",".join(["x"] * 22) + "\n"),
])
def test_gzip_text_reads_as_the_plain_text_whatever_its_name(tmp_path: Path, format_name: str,
                                                              text: str) -> None:
    plain, packed, unnamed = tmp_path / "a.txt", tmp_path / "a.txt.gz", tmp_path / "b"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    unnamed.write_bytes(packed.read_bytes())
    expected = read(format_name, plain)
    for path in (packed, unnamed):
        for mine, theirs in zip(read(format_name, path), expected, strict=True):
            np.testing.assert_array_equal(mine.keys, theirs.keys)
            np.testing.assert_array_equal(mine.dense, theirs.dense)
            np.testing.assert_array_equal(mine.lines, theirs.lines)


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "day_0.gz"
    path.write_bytes(gzip.compress(criteo_text(400).encode())[:300])
    with pytest.raises(NASRecError, match=r"day_0.gz: cannot decompress"):
        read("criteo", path)


@pytest.mark.parametrize("format_name", ["criteo", "csv", "kdd"])
def test_binary_garbage_is_refused_at_its_line(tmp_path: Path, format_name: str) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(criteo_text(3).encode() + b"\x00\xff\xfe\x80garbage\n")
    if format_name == "csv":
        path.write_bytes(b"label,a\n1,x\n\xff\xfe\n")
    line = 3 if format_name == "csv" else 4
    with pytest.raises(NASRecError, match=rf"blob.bin:{line}: not UTF-8 text \(byte 0x"):
        read(format_name, path)


def test_binary_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(NASRecError, match=r"blob.csv:1: not UTF-8 text"):
        read("csv", path)


def test_duplicate_column_names_are_named(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("label,a,b,a\n1,x,y,z\n")
    with pytest.raises(NASRecError, match=r"dup.csv:1: field 'a': the column name appears twice"):
        read("csv", path)
    table = pa.Table.from_arrays([pa.array([1, 0]), pa.array(["a", "b"]), pa.array(["c", "d"])],
                                 names=["label", "f", "f"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(NASRecError, match=r"dup.parquet: field 'f': the column name appears"):
        read("parquet", tmp_path / "dup.parquet")


def test_a_parquet_column_of_lists_is_named(tmp_path: Path) -> None:
    path = tmp_path / "lists.parquet"
    pq.write_table(pa.table({"label": [1, 0], "tags": [[1, 2], [3]], "city": ["a", "b"]}), path)
    with pytest.raises(NASRecError, match=r"lists.parquet: field 'tags': a column of list<"):
        read("parquet", path)
    assert len(read("parquet", path, sparse_columns=("city",))[0]) == 2


def test_nan_is_a_missing_dense_value_and_inf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "values.csv"
    path.write_text("label,d,s\n1,nan,x\n0,NaN,y\n1,,z\n0,2.5,w\n")
    dense = read("csv", path, dense_columns=("d",))[0].dense[:, 0]
    assert np.isnan(dense[:3]).all() and dense[3] == 2.5
    parquet = tmp_path / "values.parquet"
    pq.write_table(pa.table({"label": [1, 0], "d": [float("nan"), 1.0], "s": ["a", "b"]}),
                   parquet)
    assert np.isnan(read("parquet", parquet, dense_columns=("d",))[0].dense[0, 0])
    for text, line in (("label,d,s\n1,1,x\n0,inf,y\n", 3), ("label,d,s\n1,-Infinity,x\n", 2)):
        path.write_text(text)
        with pytest.raises(NASRecError, match=rf"values.csv:{line}: field 'd': dense value is "
                           r"not a number .*an infinite one is refused"):
            read("csv", path, dense_columns=("d",))
    pq.write_table(pa.table({"label": [1], "d": [float("inf")], "s": ["a"]}), parquet)
    with pytest.raises(NASRecError, match=r"values.parquet:1: field 'd'"):
        read("parquet", parquet, dense_columns=("d",))
