"""`nasrec predict`: raw rows in any `prepare` format, encoded with the run's vocabularies, get
the probabilities `nasrec evaluate` computes for the same rows prepared with --schema-from."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from nasrec_torchrec.data.formats import CRITEO_LAYOUT
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.stages.evaluate import evaluate_model
from nasrec_torchrec.train.metrics import binary_metrics

from serving_helpers import evaluated_probabilities, run_command

pytestmark = pytest.mark.usefixtures("one_thread")


def _predict(model_dir: str, output: str, format_name: str, *inputs: str,
             extra: tuple[str, ...] = ()) -> pa.Table:
    assert run_command("predict", ["--model", model_dir, "--format", format_name,
                                   "--input", *inputs, "--output", output, "--batch-size",
                                   "150", "--threads", "1", *extra]) == 0
    return pq.read_table(output)


def _raw_table(path: str) -> pa.Table:
    """The Criteo TSV as string columns named like the format."""
    return pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(
        column_names=list(CRITEO_LAYOUT.columns)), parse_options=pa_csv.ParseOptions(
        delimiter="\t"), convert_options=pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in CRITEO_LAYOUT.columns}))


@pytest.mark.parametrize("run", ["architecture_run", "baseline_run"])
def test_predicted_probabilities_are_those_nasrec_evaluate_scores(run, request, new_rows,
                                                                  new_data, tmp_path):
    model_dir = request.getfixturevalue(run)
    scores = _predict(model_dir, str(tmp_path / "scores.parquet"), "criteo", new_rows)
    assert scores.column_names == ["file", "line", "probability", "label"]
    assert scores["line"].to_pylist() == list(range(1, 401))
    assert set(scores["file"].to_pylist()) == {os.path.abspath(new_rows)}
    expected, labels = evaluated_probabilities(model_dir, new_data, "test")
    probability = scores["probability"].to_numpy()
    np.testing.assert_allclose(probability, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(scores["label"].to_numpy(), labels)
    logits = np.log(probability) - np.log1p(-probability)
    import torch

    metrics = binary_metrics(torch.from_numpy(logits).float(),
                             torch.from_numpy(labels).float())
    evaluation = evaluate_model(model_dir, new_data, "test", write=False)["metrics"]
    assert metrics == pytest.approx(evaluation, rel=1e-6)


def test_rows_without_label_and_in_other_formats_score_the_same(architecture_run, new_rows,
                                                                tmp_path):
    reference = _predict(architecture_run, str(tmp_path / "tsv.parquet"), "criteo", new_rows)
    probability = reference["probability"].to_numpy()
    raw = _raw_table(new_rows)

    unlabelled_tsv = tmp_path / "unlabelled.txt"
    pa_csv.write_csv(raw.drop_columns(["label"]), unlabelled_tsv, pa_csv.WriteOptions(
        include_header=False, delimiter="\t", quoting_style="none"))
    unlabelled = _predict(architecture_run, str(tmp_path / "a.parquet"), "criteo",
                          str(unlabelled_tsv))
    assert unlabelled.column_names == ["file", "line", "probability"]
    np.testing.assert_array_equal(unlabelled["probability"].to_numpy(), probability)

    csv_file = tmp_path / "rows.csv"  # header, label column, the model's feature names
    pa_csv.write_csv(raw, csv_file)
    from_csv = _predict(architecture_run, str(tmp_path / "b.parquet"), "csv", str(csv_file))
    np.testing.assert_array_equal(from_csv["probability"].to_numpy(), probability)
    assert from_csv["label"].to_pylist() == reference["label"].to_pylist()

    parquet_file = tmp_path / "rows.parquet"  # no label column, columns in another order
    pq.write_table(raw.drop_columns(["label"]).select(list(reversed(raw.column_names[1:]))),
                   parquet_file)
    from_parquet = _predict(architecture_run, str(tmp_path / "c.parquet"), "parquet",
                            str(parquet_file))
    np.testing.assert_array_equal(from_parquet["probability"].to_numpy(), probability)
    assert "label" not in from_parquet.column_names


def test_bad_rows_are_skipped_or_named(architecture_run, new_rows, tmp_path):
    lines = open(new_rows).read().splitlines(keepends=True)
    fields = lines[4].split("\t")
    fields[20] = "not-hex"  # C7 of line 5
    lines[4] = "\t".join(fields)
    broken = tmp_path / "broken.txt"
    broken.write_text("".join(lines))
    with pytest.raises(NASRecError, match=r"broken.txt:5.*C7"):
        _predict(architecture_run, str(tmp_path / "a.parquet"), "criteo", str(broken))
    assert not os.path.exists(tmp_path / "a.parquet")
    skipped = _predict(architecture_run, str(tmp_path / "b.parquet"), "criteo", str(broken),
                       extra=("--on-bad-row", "skip"))
    assert skipped["line"].to_pylist() == [1, 2, 3, 4, *range(6, 401)]

    missing_column = tmp_path / "rows.csv"
    pa_csv.write_csv(_raw_table(new_rows).drop_columns(["C26"]), missing_column)
    with pytest.raises(NASRecError, match="C26"):
        _predict(architecture_run, str(tmp_path / "c.parquet"), "csv", str(missing_column))
