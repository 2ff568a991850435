"""Stage `predict`: a trained model's click probability for every row of raw logs.

The raw files are read by `prepare`'s readers and encoded exactly as `prepare --schema-from`
encodes them with the vocabularies and transforms of the data the model trained on
(`data.prepare.file_source`, `reused_vocabularies`, `data.encoding.Encoder`); the rows are
then mapped to the model's tables (`data.schema.table_row`) and batched as the loader
batches them (`data.loader.rows_batch`). Nothing is written but the output Parquet file:
`file`, `line`, `probability` (float64) and, when the input has one, `label`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option, same_as
from nasrec_torchrec.stages.data import PrepareRun

logger = logging.getLogger(__name__)


@dataclass
class PredictRun:
    """Scoring raw rows with a trained model directory."""

    model: str = option("", "a trained model directory (train / retrain candidate / final)",
                        metavar="DIR")
    input: list[str] = option(default_factory=list, help="raw input files in a `prepare` "
                              "format, read in order; the label may be absent",
                              metavar="PATH")
    format: Optional[str] = same_as(PrepareRun, "format")
    output: str = option("", "the Parquet file written (file, line, probability[, label])",
                         metavar="FILE.parquet")
    label_column: str = same_as(PrepareRun, "label_column")
    dense_columns: list[str] = option(default_factory=list, help="csv/parquet dense columns "
                                      "(default: the model's dense features)", metavar="NAME")
    sparse_columns: Optional[list[str]] = option(None, "csv/parquet categorical columns "
                                                 "(default: the model's sparse features)",
                                                 metavar="NAME")
    kdd_user_profile: Optional[str] = same_as(PrepareRun, "kdd_user_profile")
    on_bad_row: str = same_as(PrepareRun, "on_bad_row")
    checkpoint: Optional[str] = option(None, "a step_* checkpoint (default: the model's chosen "
                                       "or latest)", metavar="DIR")
    batch_size: int = option(4096, "rows scored per batch", minimum=1)
    threads: Optional[int] = option(None, "intra-op threads", minimum=1)


def predict(run: PredictRun, source: str = "predict") -> dict[str, Any]:
    """Score the rows of `run.input`; returns `{"output", "rows", "labelled", "skipped_rows",
    "checkpoint", "step", "seconds"}`."""
    from nasrec_torchrec.data.formats import ReaderOptions
    from nasrec_torchrec.data.prepare import file_source, parse_inputs
    from nasrec_torchrec.stages.evaluate import load_model
    from nasrec_torchrec.train.distributed import set_threads

    check(run, source)
    for name, flag in (("model", "--model"), ("input", "--input"), ("format", "--format"),
                       ("output", "--output")):
        if not getattr(run, name):
            raise NASRecError(f"{source}: field '{name}' ({flag}): is required")
    inputs = parse_inputs(run.input, "none")
    set_threads(run.threads, 1)
    started = time.perf_counter()
    trained = load_model(run.model, "cpu", run.checkpoint)
    schema = trained.schema
    options = ReaderOptions(
        on_bad_row=run.on_bad_row, label_column=run.label_column,
        dense_columns=_names(run.dense_columns) or tuple(schema.dense),
        sparse_columns=_names(run.sparse_columns) or tuple(schema.sparse_names),
        kdd_user_profile=run.kdd_user_profile, label_optional=True,
    )
    rows_source = file_source(run.format, inputs, options)
    totals = _write_scores(trained, rows_source, run.output, run.batch_size)
    result = {"output": os.path.abspath(run.output), **totals, "checkpoint": trained.checkpoint,
              "step": trained.step, "seconds": time.perf_counter() - started}
    logger.info("%s: %d rows scored with %s", run.output, totals["rows"], run.model)
    return result


def _names(items: Optional[list[str]]) -> tuple[str, ...]:
    return tuple(name.strip() for item in items or () for name in item.split(",")
                 if name.strip())


def _write_scores(trained: Any, rows_source: Any, output: str, batch_size: int
                  ) -> dict[str, Any]:
    """Encode, score and write every chunk of `rows_source`; the totals."""
    import pyarrow.parquet as pq

    from nasrec_torchrec.artifacts import staged_path
    from nasrec_torchrec.data.encoding import Encoder
    from nasrec_torchrec.data.prepare import reused_vocabularies

    vocabularies, _ = reused_vocabularies(trained.data, rows_source)
    encoder = Encoder(vocabularies)
    rows = skipped = 0
    labelled = False  # the readers read every input with the first one's columns
    writer = None
    with staged_path(output) as staging:
        try:
            for _, chunk in rows_source.stream(None):
                skipped += chunk.skipped
                labelled = chunk.labels is not None
                table = _scores_table(trained, encoder, chunk, batch_size)
                if writer is None:
                    writer = pq.ParquetWriter(staging, table.schema)
                writer.write_table(table)
                rows += len(chunk)
        finally:
            if writer is not None:
                writer.close()
    return {"rows": rows, "labelled": labelled, "skipped_rows": skipped}


def _scores_table(trained: Any, encoder: Any, chunk: Any, batch_size: int) -> Any:
    """The output rows of one raw chunk."""
    import numpy as np
    import pyarrow as pa

    columns = {"file": pa.array([chunk.path] * len(chunk)).dictionary_encode(),
               "line": pa.array(chunk.lines.astype(np.int64)),
               "probability": pa.array(_chunk_probabilities(trained, encoder, chunk,
                                                            batch_size))}
    if chunk.labels is not None:
        columns["label"] = pa.array(chunk.labels.astype(np.int8))
    return pa.table(columns)


def _chunk_probabilities(trained: Any, encoder: Any, chunk: Any, batch_size: int) -> Any:
    """Probabilities `[n]` float64 of a raw chunk's rows."""
    import numpy as np
    import torch

    from nasrec_torchrec.data.loader import rows_batch
    from nasrec_torchrec.data.schema import table_row

    dense, full_rows = encoder.encode(chunk)
    names = trained.schema.sparse_names
    sparse = np.empty_like(full_rows)
    for k, name in enumerate(names):
        sparse[:, k] = table_row(full_rows[:, k], trained.schema.table_rows(
            name, trained.embedding_cap))
    labels = np.zeros(len(chunk), dtype=np.float32)
    scores = []
    with torch.no_grad():
        for begin in range(0, len(chunk), batch_size):
            part = slice(begin, begin + batch_size)
            batch = rows_batch(names, dense[part], sparse[part], labels[part])
            logits = trained.model(batch.dense_features, batch.sparse_features)
            scores.append(torch.sigmoid(logits.double()).numpy())
    return np.concatenate(scores) if scores else np.zeros(0)

