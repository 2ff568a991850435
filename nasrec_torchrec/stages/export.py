"""Stage `export`: a trained model as one `torch.export` program for serving, with a manifest.

The program (`nn.serving.ServingModel`) holds the whole model, embedding tables included, in
plain torch ops: a serving process loads it with `torch.export.load` alone (no TorchRec, no
nasrec_torchrec). `manifest.json` records its inputs in order (dense features, then the sparse
ids as values + lengths with the features' names), the dense transform, the token -> key rule
and, per sparse feature, its vocabulary file (copied under `vocab/`) mapping keys to the ids
the program takes. After exporting, rows of the run's data are scored by the program and by
the fp32 model; the largest difference is recorded (the fp16 tables' error against fp32).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Optional

from nasrec_torchrec.artifacts import EXPORT_MANIFEST_FILE, EXPORTED_PROGRAM_FILE, write_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "nasrec_torchrec.export/1"
# --precision NAME -> the torch dtype of the exported tables
TABLE_PRECISIONS = {"fp32": "float32", "fp16": "float16"}


@dataclass
class ExportRun:
    """Exporting a trained model directory."""

    model: str = option("", "a trained model directory (train / retrain candidate / final)",
                        metavar="DIR")
    output: str = option("", "the export directory (model.pt2, manifest.json, vocab/)",
                         metavar="DIR")
    precision: str = option("fp32", "embedding tables in fp32, or fp16 (half the bytes; the "
                            "error against fp32 goes to the manifest)",
                            choices=tuple(TABLE_PRECISIONS))
    checkpoint: Optional[str] = option(None, "a step_* checkpoint (default: the model's chosen "
                                       "or latest)", metavar="DIR")
    split: Optional[str] = option(None, "split of the training data scored by the program "
                                  "and the model to check the export (default: test if "
                                  "present, else val)")
    check_rows: int = option(4096, "rows scored for that check (0: none)", minimum=0)
    overwrite: bool = option(False, "replace an existing output")
    threads: Optional[int] = option(None, "intra-op threads", minimum=1)


def export(run: ExportRun, source: str = "export") -> dict[str, Any]:
    """Export `run.model` to `run.output`; returns the manifest written."""
    import torch

    from nasrec_torchrec.data.output_dir import atomic_directory
    from nasrec_torchrec.nn.serving import ServingModel
    from nasrec_torchrec.stages.evaluate import load_model
    from nasrec_torchrec.train.distributed import set_threads

    check(run, source)
    for name in ("model", "output"):
        if not getattr(run, name):
            raise NASRecError(f"{source}: field '{name}' (--{name}): is required")
    set_threads(run.threads, 1)
    started = time.perf_counter()
    trained = load_model(run.model, "cpu", run.checkpoint)
    table_rows = [trained.schema.table_rows(name, trained.embedding_cap)
                  for name in trained.schema.sparse_names]
    serving = ServingModel(trained.model, table_rows,
                           getattr(torch, TABLE_PRECISIONS[run.precision]))
    serving.eval().requires_grad_(False)  # served outputs need no autograd
    with atomic_directory(run.output, run.overwrite) as directory:
        program = torch.export.export(serving, _example_inputs(trained.schema),
                                      dynamic_shapes=_dynamic_shapes())
        torch.export.save(program, os.path.join(directory, EXPORTED_PROGRAM_FILE))
        manifest = _export_manifest(run, trained, table_rows)
        for feature in manifest["sparse_features"]:
            target = os.path.join(directory, feature["vocabulary"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(trained.data, feature["vocabulary"]), target)
        if run.check_rows:
            manifest["check"] = _check_program(program.module(), trained, run.split,
                                               run.check_rows)
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        write_json(os.path.join(directory, EXPORT_MANIFEST_FILE), manifest)
    logger.info("exported %s to %s (%s tables)", run.model, run.output, run.precision)
    return manifest


def _example_inputs(schema: Any) -> tuple[Any, Any, Any]:
    """Inputs to trace with: 3 rows, one id 0 per feature and row, two in the first bag (the
    batch and the id count differ, so neither is fixed to the other)."""
    import torch

    num_features = len(schema.sparse)
    lengths = torch.ones(num_features, 3, dtype=torch.int64)
    lengths[0, 0] = 2
    values = torch.zeros(int(lengths.sum()), dtype=torch.int64)
    return torch.zeros(3, len(schema.dense)), values, lengths


def _dynamic_shapes() -> tuple[dict[int, Any], ...]:
    """The batch (dense rows, lengths columns) and the number of ids vary."""
    from torch.export import Dim

    batch, ids = Dim("batch"), Dim("num_ids")
    return {0: batch}, {0: ids}, {1: batch}


def _export_manifest(run: ExportRun, trained: Any, table_rows: list[int]) -> dict[str, Any]:
    """What a serving process needs to feed the program: inputs, features, vocabularies."""
    from nasrec_torchrec.data.encoding import DENSE_TRANSFORM
    from nasrec_torchrec.data.vocabulary import VOCABULARY_DIR, vocabulary_file
    from nasrec_torchrec.nn.serving import SERVING_INPUTS, SERVING_OUTPUT

    schema = trained.schema
    dense, sparse = list(schema.dense), schema.sparse_names
    return {
        "format": MANIFEST_FORMAT,
        "program": EXPORTED_PROGRAM_FILE,
        "load": f"torch.export.load('{EXPORTED_PROGRAM_FILE}').module()"
                f"({', '.join(SERVING_INPUTS)}) -> {SERVING_OUTPUT}",
        "model": os.path.abspath(run.model), "checkpoint": trained.checkpoint,
        "step": trained.step, "precision": run.precision,
        "inputs": [
            {"name": SERVING_INPUTS[0], "dtype": "float32", "shape": ["batch", len(dense)],
             "features": dense, "transform": schema.extra.get("dense_transform",
                                                              DENSE_TRANSFORM)},
            {"name": SERVING_INPUTS[1], "dtype": "int64", "shape": ["num_ids"],
             "layout": "the ids of feature 0 for rows 0..batch-1, then of feature 1, ... "
                       "(features in sparse_lengths' order; KeyedJaggedTensor.values())",
             "ids": "a token's row in its feature's vocabulary file (row of its key); 0 for "
                    "a missing or unknown token"},
            {"name": SERVING_INPUTS[2], "dtype": "int64", "shape": [len(sparse), "batch"],
             "layout": "ids of feature f in row b", "features": sparse},
        ],
        "output": {"name": SERVING_OUTPUT, "dtype": "float32", "shape": ["batch"]},
        "token_key": schema.extra.get("token_key", "fnv1a64(token)"),
        "sparse_features": [
            {"name": name, "vocabulary": f"{VOCABULARY_DIR}/{vocabulary_file(name, index)}",
             "vocabulary_rows": feature.num_rows, "table_rows": rows}
            for index, (name, feature, rows) in enumerate(zip(sparse, schema.sparse,
                                                              table_rows))],
        "embedding_cap": trained.embedding_cap,
    }


def _check_program(program: Any, trained: Any, split: Optional[str], max_rows: int
                  ) -> dict[str, Any]:
    """Score up to `max_rows` rows of the training data's `split` with the exported program
    (full-vocabulary ids) and with the fp32 model (table ids, as `nasrec evaluate`)."""
    import torch

    from nasrec_torchrec.data.loader import ParquetBatchLoader
    from nasrec_torchrec.nn.serving import serving_inputs
    from nasrec_torchrec.stages.evaluate import default_split
    from nasrec_torchrec.train.metrics import binary_metrics

    split = split or default_split(trained.data)
    batch_size = min(max_rows, 1024)
    full = ParquetBatchLoader(trained.data, split, batch_size, embedding_cap=None, prefetch=0)
    tables = ParquetBatchLoader(trained.data, split, batch_size,
                                embedding_cap=trained.embedding_cap, prefetch=0)
    exported, reference, labels = [], [], []
    with torch.no_grad():
        for full_batch, table_batch in zip(full, tables):
            exported.append(program(*serving_inputs(full_batch.dense_features,
                                                    full_batch.sparse_features)))
            reference.append(trained.model(table_batch.dense_features,
                                           table_batch.sparse_features))
            labels.append(table_batch.labels)
            if sum(len(part) for part in labels) >= max_rows:
                break
    probability = torch.cat(exported)[:max_rows].double()
    logits = torch.cat(reference)[:max_rows]
    label = torch.cat(labels)[:max_rows]
    exported_logits = torch.logit(probability.clamp(1e-12, 1 - 1e-12))
    return {"split": split, "rows": len(label),
            "max_abs_difference": float((probability - torch.sigmoid(logits.double()))
                                        .abs().max()) if len(label) else 0.0,
            "exported": binary_metrics(exported_logits, label.float()),
            "model_fp32": binary_metrics(logits.float(), label.float())}
