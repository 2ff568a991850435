"""`nasrec prepare`: splits, encoding, schema/stats, --schema-from, atomic output, real samples."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nasrec_torchrec.cli import main
from nasrec_torchrec.data import shards
from nasrec_torchrec.data.schema import Schema
from nasrec_torchrec.data.vocabulary import load_vocabularies


def criteo_rows(n: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """n Criteo TSV lines with Zipf-like C1 tokens; returns the text and the labels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    lines = []
    for i in range(n):
        dense = [str(int(v)) for v in rng.integers(-2, 50, 13)]
        dense[0] = "" if i % 7 == 0 else dense[0]
        sparse = [f"{min(int(rng.zipf(1.5)), 99):08x}" for _ in range(26)]
        sparse[1] = "" if i % 5 == 0 else sparse[1]
        lines.append("\t".join([str(labels[i]), *dense, *sparse]))
    return "\n".join(lines) + "\n", labels


def prepare(*args: str) -> int:
    return main(["prepare", *args])


def read_split(directory: Path, split: str) -> pa.Table:
    return pq.read_table(str(directory / split))


@pytest.fixture()
def criteo_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_text(criteo_rows(3000)[0])
    return path


def test_prepare_splits_80_10_10_stratified_and_writes_schema_and_stats(
        tmp_path: Path, criteo_file: Path) -> None:
    output = tmp_path / "out"
    assert prepare("--format", "criteo", "--input", str(criteo_file), "--output", str(output),
                   "--seed", "5", "--row-group-rows", "500") == 0
    schema = Schema.load(str(output))
    assert (len(schema.dense), len(schema.sparse), schema.source_format) == (13, 26, "criteo")
    rows = {split: read_split(output, split) for split in ("train", "val", "test")}
    assert {split: t.num_rows for split, t in rows.items()} == schema.splits
    assert abs(schema.splits["train"] - 2400) <= 10 and abs(schema.splits["val"] - 300) <= 10
    rates = [t["label"].to_numpy().mean() for t in rows.values()]
    assert max(rates) - min(rates) < 0.01
    assert pq.ParquetFile(str(output / "train" / "part-00000.parquet")).metadata.row_group(0).num_rows == 500
    stats = json.loads((output / "stats.json").read_text())
    assert stats["splits"]["train"]["rows"] == schema.splits["train"]
    assert stats["sparse"]["C2"]["missing_rate"] == pytest.approx(600 / 3000)
    assert stats["dense"]["I1"]["missing_rate"] == pytest.approx(429 / 3000)
    assert set(stats["timings"]) >= {"count_seconds", "encode_seconds", "rows_per_second"}
    assert rows["train"].schema.field("C1").type == pa.int64()
    assert rows["train"].schema.field("I1").type == pa.float32()


def test_rows_are_ranked_by_train_frequency(tmp_path: Path, criteo_file: Path) -> None:
    output = tmp_path / "out"
    prepare("--format", "criteo", "--input", str(criteo_file), "--output", str(output))
    vocabulary = load_vocabularies(str(output), ["C1"])[0]
    train_rows = Counter(read_split(output, "train")["C1"].to_numpy().tolist())
    assert 0 not in train_rows
    assert [train_rows[r] for r in range(1, vocabulary.num_rows)] == vocabulary.counts.tolist()
    assert (np.diff(vocabulary.counts) <= 0).all()
    val_rows = read_split(output, "val")["C2"].to_numpy()
    assert val_rows.max() < vocabulary.num_rows


def test_dense_transform_and_rows_of_a_hand_made_file(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    sparse = [["aa"] * 26, ["bb"] * 26, ["aa"] * 26, ["cc"] * 26, [""] * 26]
    dense = [["3"] * 13, ["-4"] * 13, [""] * 13, ["0"] * 13, ["100"] * 13]
    path.write_text("".join("\t".join(["1" if i % 2 else "0", *dense[i], *sparse[i]]) + "\n"
                            for i in range(5)))
    output = tmp_path / "out"
    prepare("--format", "criteo", "--input", str(path), "--output", str(output),
            "--split", "none", "--split-name", "all", "--min-frequency", "2")
    table = read_split(output, "all")
    np.testing.assert_allclose(table["I7"].to_numpy(),
                               [np.log(4), 0, 0, 0, np.log(101)], rtol=1e-6)
    assert table["C3"].to_numpy().tolist() == [1, 0, 1, 0, 0]
    assert table["label"].to_numpy().tolist() == [0, 1, 0, 1, 0]
    assert Schema.load(str(output)).splits == {"all": 5}


def test_schema_from_reuses_the_vocabulary(tmp_path: Path) -> None:
    first, later = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("label,user,item\n1,u1,i1\n0,u1,i2\n1,u2,i1\n")
    later.write_text("label,user,item\n0,u2,i9\n1,u1,i1\n")
    prepare("--format", "csv", "--input", str(first), "--output", str(tmp_path / "base"),
            "--split", "none")
    prepare("--format", "csv", "--input", str(later), "--output", str(tmp_path / "new"),
            "--split", "none", "--split-name", "test", "--schema-from", str(tmp_path / "base"))
    table = read_split(tmp_path / "new", "test")
    assert table["user"].to_numpy().tolist() == [2, 1]
    assert table["item"].to_numpy().tolist() == [0, 1]
    base, new = Schema.load(str(tmp_path / "base")), Schema.load(str(tmp_path / "new"))
    assert base.sparse == new.sparse and new.splits == {"test": 2}
    other = tmp_path / "c.csv"
    other.write_text("label,user\n0,u2\n")
    code = prepare("--format", "csv", "--input", str(other), "--output", str(tmp_path / "x"),
                   "--split", "none", "--schema-from", str(tmp_path / "base"))
    assert code == 2 and not (tmp_path / "x").exists()


def test_given_splits_keep_their_files(tmp_path: Path) -> None:
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    train.write_bytes(b"label,user\r\n1,a\r\n0,b\r\n0,a\r\n")
    valid.write_bytes(b"label,user\r\n1,z\r\n")
    output = tmp_path / "out"
    assert prepare("--format", "csv", "--split", "given", "--input", f"train={train}",
                   f"val={valid}", "--output", str(output)) == 0
    assert Schema.load(str(output)).splits == {"train": 3, "val": 1}
    assert read_split(output, "val")["user"].to_numpy().tolist() == [0]


def test_bad_row_fails_without_output_and_skip_counts_it(tmp_path: Path, capsys) -> None:
    text, _ = criteo_rows(100)
    lines = text.splitlines()
    lines[60] = lines[60].replace("\t", "\tx", 1)
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out"
    assert prepare("--format", "criteo", "--input", str(path), "--output", str(output)) == 2
    assert f"{path}:61: field 'I1': dense value is not a number" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["train.txt"]
    assert prepare("--format", "criteo", "--input", str(path), "--output", str(output),
                   "--on-bad-row", "skip") == 0
    stats = json.loads((output / "stats.json").read_text())
    assert stats["skipped_rows"] == 1 and sum(s["rows"] for s in stats["splits"].values()) == 99


def test_failure_mid_write_leaves_nothing(tmp_path: Path, criteo_file: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    original = shards.ShardWriter.write
    calls = []

    def failing_write(self: shards.ShardWriter, table: pa.Table) -> None:
        calls.append(1)
        if len(calls) == 2:
            assert list(tmp_path.glob(".out.partial-*/train/part-00001.parquet"))
            raise KeyboardInterrupt
        original(self, table)

    monkeypatch.setattr(shards.ShardWriter, "write", failing_write)
    assert prepare("--format", "criteo", "--input", str(criteo_file), "--output",
                   str(tmp_path / "out"), "--row-group-rows", "100", "--shard-rows", "200") == 130
    assert sorted(os.listdir(tmp_path)) == ["train.txt"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "nasrec prepare: interrupted (Ctrl-C); partial outputs were removed, a resumable "
        "stage continues with --resume")


def test_existing_output_needs_overwrite(tmp_path: Path, criteo_file: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep").write_text("x")
    assert prepare("--format", "criteo", "--input", str(criteo_file), "--output", str(output)) == 2
    assert (output / "keep").exists()
    assert prepare("--format", "criteo", "--input", str(criteo_file), "--output", str(output),
                   "--overwrite") == 0
    assert not (output / "keep").exists() and (output / "schema.json").exists()
    assert sorted(os.listdir(tmp_path)) == ["out", "train.txt"]


@pytest.mark.parametrize("name, args, dense, sparse", [
    ("criteo", ["--format", "criteo", "--input", "criteo_sample/train.csv",
                "criteo_sample/dev.csv", "criteo_sample/test.csv"], 13, 26),
    ("avazu", ["--format", "avazu", "--input", "avazu_sample/train.csv",
               "avazu_sample/dev.csv", "avazu_sample/test.csv"], 0, 22),
    ("frappe", ["--format", "csv", "--split", "given", "--input", "train=frappe_x1/train.csv",
                "val=frappe_x1/valid.csv"], 0, 10),
])
def test_prepare_real_samples(tmp_path: Path, shared_data: Path, name: str, args: list[str],
                              dense: int, sparse: int) -> None:
    args = [f"{part.split('=')[0]}={shared_data / part.split('=')[1]}" if "=" in part
            else str(shared_data / part) if "/" in part else part for part in args]
    output = tmp_path / name
    assert prepare(*args, "--output", str(output)) == 0
    schema = Schema.load(str(output))
    assert (len(schema.dense), len(schema.sparse)) == (dense, sparse)
    if name == "frappe":
        assert schema.splits == {"train": 202_027, "val": 57_722}
    else:
        assert set(schema.splits) == {"train", "val", "test"}
        assert abs(schema.positive_rate["train"] - schema.positive_rate["test"]) < 0.01


def test_prepare_synthetic_kdd_with_profile(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    assert main(["synth", "--like", "kdd", "--rows", "3000", "--raw", "--output", str(raw)]) == 0
    output = tmp_path / "kdd"
    assert prepare("--format", "kdd", "--input", str(raw / "training.txt"), "--kdd-user-profile",
                   str(raw / "userid_profile.txt"), "--output", str(output)) == 0
    schema = Schema.load(str(output))
    assert list(schema.dense) == ["Impression", "Depth", "Position"]
    assert len(schema.sparse) == 10 and schema.sparse_names[-2:] == ["Gender", "Age"]
    assert schema.table_rows("Gender", None) == 4


def test_prepare_parquet_with_a_column_mapping(tmp_path: Path) -> None:
    source = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"clicked": [0, 1] * 50, "price": [1.0, None] * 50,
                             "shop": ["a", "b", "c", "d"] * 25, "unused": list(range(100))}),
                   source)
    output = tmp_path / "out"
    assert prepare("--format", "parquet", "--input", str(source), "--output", str(output),
                   "--label-column", "clicked", "--dense-columns", "price",
                   "--sparse-columns", "shop", "--split", "none") == 0
    schema = Schema.load(str(output))
    assert (list(schema.dense), schema.sparse_names, schema.splits) == (["price"], ["shop"],
                                                                          {"train": 100})
    table = read_split(output, "train")
    np.testing.assert_allclose(table["price"].to_numpy()[:2], [np.log(2.0), 0.0], rtol=1e-6)
    assert sorted(set(table["shop"].to_numpy().tolist())) == [1, 2, 3, 4]


def test_split_flags_are_checked(tmp_path: Path, capsys) -> None:
    path = tmp_path / "a.csv"
    path.write_text("label,user\n1,a\n")
    out = str(tmp_path / "out")
    assert prepare("--format", "csv", "--split", "given", "--input", str(path),
                   "--output", out) == 2
    assert "write SPLIT=PATH" in capsys.readouterr().err
    assert prepare("--format", "csv", "--split", "given", "--input", f"val={path}",
                   "--output", out) == 2
    assert "a 'train' input is needed" in capsys.readouterr().err
    assert prepare("--format", "csv", "--split", "90,10", "--input", str(path),
                   "--output", out) == 2
    assert prepare("--format", "csv", "--input", str(tmp_path / "missing.csv"),
                   "--output", out) == 2
    assert "input file not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _numbered_csv(path: Path, labels: list[int], first: int = 0) -> None:
    """label, n (the row's number, a dense column), user (a token of its own per row)."""
    path.write_text("label,n,user\n" + "".join(
        f"{label},{first + i},u{first + i}\n" for i, label in enumerate(labels)))


def _numbers(table: pa.Table) -> list[int]:
    return np.rint(np.expm1(table["n"].to_numpy().astype(np.float64))).astype(int).tolist()


def test_val_from_train_carves_a_stratified_seeded_val_and_keeps_the_test_input(
        tmp_path: Path) -> None:
    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    labels = [1, 0, 0, 0, 0, 1, 0] * 9  # 18 positives and 45 negatives: 2 and 5 blocks of 9
    _numbered_csv(train, labels)
    _numbered_csv(valid, [1, 0, 1], first=100)

    def carve(output: Path, seed: int) -> dict[str, pa.Table]:
        assert prepare("--format", "csv", "--split", "given", "--val-from-train", "1/9",
                       "--seed", str(seed), "--dense-columns", "n", "--input", f"train={train}",
                       f"test={valid}", "--output", str(output)) == 0
        return {split: read_split(output, split) for split in ("train", "val", "test")}

    tables = carve(tmp_path / "out", 0)
    numbers = {split: _numbers(table) for split, table in tables.items()}
    # 1/9 of each label: 18 / 9 = 2 positives and 45 / 9 = 5 negatives; the rest stays train
    assert sorted(tables["val"]["label"].to_numpy().tolist()) == [0] * 5 + [1] * 2
    assert sorted(tables["train"]["label"].to_numpy().tolist()) == [0] * 40 + [1] * 16
    assert not set(numbers["train"]) & set(numbers["val"])
    assert sorted(numbers["train"] + numbers["val"]) == list(range(63))
    assert numbers["train"] == sorted(numbers["train"])  # stream order is kept
    assert all(labels[n] == label for split in ("train", "val") for n, label in
               zip(numbers[split], tables[split]["label"].to_numpy().tolist()))
    # the test input, untouched: its rows, in order
    assert numbers["test"] == [100, 101, 102]
    assert tables["test"]["label"].to_numpy().tolist() == [1, 0, 1]
    # the vocabulary: one row per train row's user, none for the val rows' (out of vocabulary)
    assert load_vocabularies(str(tmp_path / "out"), ["user"])[0].num_rows == 56 + 1
    assert sorted(tables["train"]["user"].to_numpy().tolist()) == list(range(1, 57))
    assert set(tables["val"]["user"].to_numpy().tolist()) == {0}
    schema = Schema.load(str(tmp_path / "out"))
    assert schema.splits == {"train": 56, "val": 7, "test": 3}
    assert schema.extra["split"] == {
        "mode": "given", "names": ["train", "val", "test"],
        "val_from_train": {"share": "1/9", "weights": [8, 1], "seed": 0}}
    # the same seed: the same split; another seed: another one
    assert _numbers(carve(tmp_path / "again", 0)["val"]) == numbers["val"]
    assert _numbers(carve(tmp_path / "other", 1)["val"]) != numbers["val"]


def test_val_from_train_is_refused_where_it_cannot_apply(tmp_path: Path, capsys) -> None:
    path = tmp_path / "a.csv"
    path.write_text("label,user\n1,a\n0,b\n")
    out = str(tmp_path / "out")
    for args, message in (
            (["--split", "given", "--input", f"train={path}", f"val={path}"],
             "a val input is given too"),
            (["--split", "given", "--input", f"test={path}"], "no train input to carve val from"),
            (["--input", str(path)], "use it with --split given"),
            (["--split", "given", "--input", f"train={path}", "--val-from-train", "9"],
             "'9' must lie strictly between 0 and 1")):
        flags = args if "--val-from-train" in args else [*args, "--val-from-train", "0.1"]
        assert prepare("--format", "csv", *flags, "--output", out) == 2
        err = capsys.readouterr().err
        assert "nasrec prepare: error: --val-from-train: " in err and message in err, err
    assert prepare("--format", "csv", "--split", "given", "--input", f"train={path}",
                   "--val-from-train", "150%", "--output", out) == 2
    assert "'150%' must lie strictly between 0% and 100%" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
