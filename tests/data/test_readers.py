"""Raw-format readers: parsing and the located error of each kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nasrec_torchrec.data.formats import ReaderOptions, open_reader
from nasrec_torchrec.data.tokens import hex_token_keys, token_keys
from nasrec_torchrec.errors import NASRecError


def criteo_line(label: str = "1", dense: list[str] | None = None,
                sparse: list[str] | None = None) -> str:
    dense = dense if dense is not None else [str(i) for i in range(13)]
    sparse = sparse if sparse is not None else [f"{i:08x}" for i in range(26)]
    return "\t".join([label, *dense, *sparse]) + "\n"


def read_all(format_name: str, path: Path, **options: object) -> tuple:
    reader = open_reader(format_name, ReaderOptions(**options), str(path))
    chunks = list(reader.chunks(str(path)))
    return reader, chunks


def test_token_keys_are_equal_for_equal_tokens_and_zero_for_missing() -> None:
    keys, invalid = token_keys(pa.array(["68fd1e64", None, "", "68fd1e64", "x"]))
    assert keys[0] == keys[3] != 0 and keys[1] == keys[2] == 0 and keys[4] not in (0, keys[0])
    assert not invalid.any()
    values = np.array([0, 7, 0xDEADBEEF, 2**32 - 1], dtype=np.uint64)
    strings = pa.array([f"{v:08x}" for v in values])
    np.testing.assert_array_equal(hex_token_keys(values), token_keys(strings)[0])


def test_criteo_reader_parses_labels_dense_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    dense = [""] + [str(i) for i in range(1, 13)]
    sparse = [""] + [f"{i:08x}" for i in range(1, 26)]
    path.write_text(criteo_line("0", dense, sparse) + criteo_line("1"))
    reader, chunks = read_all("criteo", path)
    assert (len(reader.dense), len(reader.sparse)) == (13, 26)
    chunk = chunks[0]
    assert chunk.labels.tolist() == [0, 1]
    assert np.isnan(chunk.dense[0, 0]) and chunk.dense[0, 5] == 5.0 and chunk.dense[1, 0] == 0.0
    assert chunk.keys[0, 0] == 0 and chunk.keys[1, 0] != 0
    assert chunk.keys[0, 1] == chunk.keys[1, 1]
    assert chunk.lines.tolist() == [1, 2]


def test_avazu_reader_accepts_header_and_headerless_files(tmp_path: Path) -> None:
    header = ("id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
              "app_category,device_id,device_ip,device_model,device_type,device_conn_type,"
              "C14,C15,C16,C17,C18,C19,C20,C21\n")
    row = "1000,1,14102100,1005,0," + ",".join(["a"] * 11) + ",15704,320,50,1722,0,35,-1,79\n"
    with_header, without = tmp_path / "train.csv", tmp_path / "dev.csv"
    with_header.write_text(header + row + row.replace(",1,", ",0,", 1))
    without.write_text(row)
    reader, chunks = read_all("avazu", with_header)
    assert (reader.label, len(reader.dense), len(reader.sparse)) == ("click", 0, 22)
    assert chunks[0].labels.tolist() == [1, 0] and chunks[0].lines.tolist() == [2, 3]
    headerless = list(reader.chunks(str(without)))[0]
    np.testing.assert_array_equal(headerless.keys[0], chunks[0].keys[0])


def test_an_optional_label_may_be_absent_and_is_required_otherwise(tmp_path: Path) -> None:
    header = ("id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
              "app_category,device_id,device_ip,device_model,device_type,device_conn_type,"
              "C14,C15,C16,C17,C18,C19,C20,C21\n")
    row = "1000,1,14102100,1005,0," + ",".join(["a"] * 11) + ",15704,320,50,1722,0,35,-1,79\n"
    labelled, unlabelled = tmp_path / "train.csv", tmp_path / "test.csv"
    labelled.write_text(header + row)
    unlabelled.write_text(header.replace("click,", "") + row.replace(",1,", ",", 1))
    _, with_label = read_all("avazu", labelled, label_optional=True)
    reader, without_label = read_all("avazu", unlabelled, label_optional=True)
    assert reader.label is None and without_label[0].labels is None
    assert without_label[0].lines.tolist() == [2]
    np.testing.assert_array_equal(without_label[0].keys, with_label[0].keys)
    with pytest.raises(NASRecError, match=r"test.csv:1: wrong field count"):
        read_all("avazu", unlabelled)  # prepare: the label is required

    criteo = tmp_path / "test.txt"
    criteo.write_text(criteo_line()[2:])  # no label field
    reader, chunks = read_all("criteo", criteo, label_optional=True)
    assert reader.label is None and chunks[0].labels is None and len(chunks[0]) == 1
    with pytest.raises(NASRecError, match="wrong field count"):
        read_all("criteo", criteo)

    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": ["x", "y"], "b": [1.5, 2.0]}), parquet)
    reader, chunks = read_all("parquet", parquet, dense_columns=("b",), label_optional=True)
    assert (reader.label, reader.sparse, chunks[0].labels) == (None, ["a"], None)
    with pytest.raises(NASRecError, match="label"):
        read_all("parquet", parquet, dense_columns=("b",))


def test_kdd_reader_labels_clicks_and_joins_the_user_profile(tmp_path: Path) -> None:
    path, profile = tmp_path / "training.txt", tmp_path / "userid_profile.txt"
    path.write_text("0\t1\t5\t6\t7\t2\t1\t8\t9\t10\t11\t490234\n"
                    "2\t3\t5\t6\t7\t3\t2\t8\t9\t10\t11\t777\n")
    profile.write_text("490234\t1\t5\n")
    reader, chunks = read_all("kdd", path, kdd_user_profile=str(profile))
    assert reader.dense == ["Impression", "Depth", "Position"]
    assert reader.sparse[-2:] == ["Gender", "Age"] and len(reader.sparse) == 10
    chunk = chunks[0]
    assert chunk.labels.tolist() == [0, 1]
    assert chunk.dense[1].tolist() == [3.0, 3.0, 2.0]
    gender = token_keys(pa.array(["1"]))[0][0]
    assert chunk.keys[0, 8] == gender and chunk.keys[1, 8] == 0 and chunk.keys[1, 9] == 0


def test_csv_reader_handles_crlf_and_column_options(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"label,user,item,price\r\n1,u1,i1,3.5\r\n0,u2,i1,\r\n")
    reader, chunks = read_all("csv", path)
    assert reader.sparse == ["user", "item", "price"] and reader.dense == []
    reader, chunks = read_all("csv", path, dense_columns=("price",), sparse_columns=("item",))
    assert reader.dense == ["price"] and reader.sparse == ["item"]
    assert chunks[0].dense[0, 0] == 3.5 and np.isnan(chunks[0].dense[1, 0])
    assert chunks[0].keys[0, 0] == chunks[0].keys[1, 0]


def test_parquet_reader_maps_columns(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"y": [0, 1, 1], "x": [1.0, None, 2.0], "c": [5, 6, 5]}), path)
    reader, chunks = read_all("parquet", path, label_column="y", dense_columns=("x",))
    assert reader.sparse == ["c"]
    assert chunks[0].labels.tolist() == [0, 1, 1] and np.isnan(chunks[0].dense[1, 0])
    assert chunks[0].keys[0, 0] == chunks[0].keys[2, 0] == token_keys(pa.array(["5"]))[0][0]


@pytest.mark.parametrize("content, line, field, message", [
    (criteo_line() + criteo_line().rsplit("\t", 1)[0] + "\n", 2, None, "wrong field count"),
    (criteo_line() * 2 + criteo_line(dense=["x1"] + ["1"] * 12), 3, "I1", "not a number"),
    (criteo_line(sparse=["zz000000"] + ["a"] * 25), 1, "C1", "bad hex id"),
    (criteo_line() + criteo_line(label="2"), 2, "label", "must be 0 or 1"),
    ("", 1, None, "empty file"),
])
def test_criteo_bad_input_names_file_line_and_field(tmp_path: Path, content: str, line: int,
                                                     field: str | None, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(NASRecError) as error:
        read_all("criteo", path)
    text = str(error.value)
    assert text.startswith(f"{path}:{line}") and message in text
    if field is not None:
        assert f"field '{field}'" in text


def test_unknown_columns_are_named(tmp_path: Path) -> None:
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("label,user\n1,a\n")
    with pytest.raises(NASRecError, match=r"train.csv:1: field 'price': unknown column"):
        read_all("csv", csv_path, dense_columns=("price",))
    parquet_path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"label": [1], "user": ["a"]}), parquet_path)
    with pytest.raises(NASRecError, match=r"rows.parquet: field 'click': unknown column"):
        read_all("parquet", parquet_path, label_column="click")


def test_skip_mode_drops_and_counts_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(criteo_line() + criteo_line().rsplit("\t", 1)[0] + "\n" + criteo_line(label="7")
                    + criteo_line(dense=["?"] * 13) + criteo_line("0"))
    _, chunks = read_all("criteo", path, on_bad_row="skip")
    assert sum(c.skipped for c in chunks) == 3
    assert [int(line) for c in chunks for line in c.lines] == [1, 5]
    assert [int(label) for c in chunks for label in c.labels] == [1, 0]


def test_text_blocks_keep_exact_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(criteo_line() * 50 + criteo_line(label="x") + criteo_line() * 5)
    reader = open_reader("criteo", ReaderOptions(block_bytes=1000), str(path))
    with pytest.raises(NASRecError, match=r"train.txt:51: field 'label'"):
        list(reader.chunks(str(path)))
