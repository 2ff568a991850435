"""Prepare: raw rows -> split, encoded Parquet shards + `schema.json` + `stats.json` + `vocab/`.

Two streaming passes: pass 1 counts the categorical keys of the train rows (memory
O(vocabulary)), pass 2 encodes every row and writes it to its split. With `schema_from` the
vocabularies of an earlier prepare are reused and only pass 2 runs. Everything is written to a
temporary sibling of the output directory and renamed at the end (`output_dir`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import numpy as np
from tqdm import tqdm

from nasrec_torchrec.data.encoding import DENSE_TRANSFORM, Encoder
from nasrec_torchrec.data.fields import RawChunk
from nasrec_torchrec.data.formats import ReaderOptions, open_reader
from nasrec_torchrec.data.output_dir import atomic_directory
from nasrec_torchrec.data.schema import DEFAULT_EMBEDDING_CAP, Schema, SparseFeature
from nasrec_torchrec.data.shards import ROW_GROUP_ROWS, SHARD_ROWS, ShardWriter, shard_schema, shard_table
from nasrec_torchrec.data.split import StratifiedSplitter, carve_weights, parse_weights
from nasrec_torchrec.data.vocabulary import (
    VOCABULARY_DIR, KeyCounter, Vocabulary, load_vocabularies, save_vocabularies,
)
from nasrec_torchrec.artifacts import STATS_FILE, write_json
from nasrec_torchrec.errors import NASRecError

logger = logging.getLogger(__name__)

LABEL = "label"
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitPlan:
    """How rows go to splits: `mode` "weights" (stratified), "given" (per input) or "none".

    With `carve` = (kept, carved) weights, "given" also splits the train input's rows,
    stratified by label and seeded, into train and val (`--val-from-train`, its text in
    `carve_share`).
    """

    mode: str
    names: tuple[str, ...]
    weights: tuple[int, ...] = ()
    seed: int = 0
    carve: tuple[int, ...] = ()
    carve_share: str = ""

    @classmethod
    def parse(cls, text: str, seed: int, split_name: str = "train",
              given_names: tuple[str, ...] = (),
              val_from_train: Optional[str] = None) -> "SplitPlan":
        """From the `--split` flag: "80,10,10", "given" or "none" (and `--val-from-train`)."""
        if val_from_train is not None:
            carve = carve_weights(val_from_train, text, given_names)
            at = given_names.index("train") + 1
            return cls("given", given_names[:at] + ("val",) + given_names[at:], seed=seed,
                       carve=carve, carve_share=val_from_train)
        if text == "given":
            if not given_names:
                raise NASRecError("--split given: name the split of every input, "
                                  "e.g. --input train=a.csv val=b.csv")
            return cls("given", given_names)
        if text == "none":
            return cls("none", (split_name,))
        return cls("weights", SPLIT_NAMES, parse_weights(text), seed)

    def assigner(self) -> Callable[[str | None, np.ndarray], np.ndarray]:
        """A fresh `(given split, labels) -> split index [n]` for one pass over the stream."""
        if self.mode == "weights":
            splitter = StratifiedSplitter(self.weights, self.seed)
            return lambda given, labels: splitter.assign(labels)
        index = {name: i for i, name in enumerate(self.names)}
        if self.carve:
            carver = StratifiedSplitter(self.carve, self.seed)
            kept = np.array([index["train"], index["val"]], dtype=np.int8)

            def assign(given: str | None, labels: np.ndarray) -> np.ndarray:
                if given == "train":
                    return kept[carver.assign(labels)]
                return np.full(len(labels), index[given or self.names[0]], np.int8)

            return assign
        return lambda given, labels: np.full(len(labels), index[given or self.names[0]], np.int8)

    def describe(self) -> dict:
        """For `schema.json`'s provenance."""
        if self.mode == "weights":
            return {"mode": "stratified", "weights": list(self.weights), "seed": self.seed}
        described: dict = {"mode": self.mode, "names": list(self.names)}
        if self.carve:
            described["val_from_train"] = {"share": self.carve_share,
                                           "weights": list(self.carve), "seed": self.seed}
        return described


@dataclass
class ChunkSource:
    """Rows to prepare: feature names and a re-startable stream of `(given split, chunk)`.

    `stream(only)` yields every row, or with `only` just the inputs given as that split.
    """

    format_name: str
    dense: list[str]
    sparse: list[str]
    stream: Callable[[str | None], Iterator[tuple[str | None, RawChunk]]]
    inputs: list[str] = field(default_factory=list)


@dataclass
class _SplitTotals:
    rows: int = 0
    positives: int = 0
    oracle_loss: float = 0.0


def _progress(description: str) -> tqdm:
    return tqdm(desc=description, unit=" rows", unit_scale=True, mininterval=1.0, leave=False)


def _count(source: ChunkSource, plan: SplitPlan) -> list[KeyCounter]:
    """Pass 1: key counts of the rows that build the vocabulary (train, or all for "none")."""
    counters = [KeyCounter() for _ in source.sparse]
    assign = plan.assigner()
    vocabulary_split = plan.names.index("train") if "train" in plan.names else 0
    only = "train" if plan.mode == "given" else None
    with _progress("count") as bar:
        for given, chunk in source.stream(only):
            take = assign(given, chunk.labels) == vocabulary_split
            keys = chunk.keys[take]
            for index, counter in enumerate(counters):
                counter.add(keys[:, index])
            bar.update(len(chunk))
    return counters


def _write_stats(directory: str, stats: dict) -> None:
    write_json(os.path.join(directory, STATS_FILE), stats)


def prepare_source(source: ChunkSource, output: str, plan: SplitPlan, *,
                   min_frequency: int = 1, schema_from: str | None = None,
                   overwrite: bool = False, row_group_rows: int = ROW_GROUP_ROWS,
                   shard_rows: int = SHARD_ROWS, extra: dict | None = None) -> dict:
    """Split, encode and write `source` to `output`; returns the stats written to stats.json.

    Args:
        source: the rows (a format reader's files, or the synthetic generator).
        output: the prepared dataset directory (must not exist unless `overwrite`).
        plan: how rows go to splits.
        min_frequency: train count below which a key maps to row 0 (with `schema_from`, the
            earlier prepare's).
        schema_from: an earlier prepared dataset whose vocabularies and transforms to reuse.
        overwrite: replace an existing `output`.
        row_group_rows: rows per Parquet row group; `shard_rows`: rows per shard file.
        extra: provenance added to `schema.json`'s `extra`.
    """
    if plan.mode == "given" and "train" not in plan.names and schema_from is None:
        raise NASRecError("--split given: a 'train' input is needed to build the vocabularies "
                          "(or reuse them with --schema-from)")
    started = time.perf_counter()
    with atomic_directory(output, overwrite) as directory:
        if schema_from is not None:
            vocabularies, min_frequency = reused_vocabularies(schema_from, source)
            shutil.copytree(os.path.join(schema_from, VOCABULARY_DIR),
                            os.path.join(directory, VOCABULARY_DIR))
        else:
            counters = _count(source, plan)
            vocabularies = [counter.vocabulary(min_frequency) for counter in counters]
            save_vocabularies(directory, source.sparse, vocabularies)
        counted = time.perf_counter()
        totals, stats = _encode(source, plan, vocabularies, directory, row_group_rows, shard_rows)
        encoded = time.perf_counter()
        rows = sum(total.rows for total in totals.values())
        if rows == 0:
            raise NASRecError(f"no rows to prepare in {', '.join(source.inputs) or 'the input'}")
        schema = Schema(
            label=LABEL, dense=tuple(source.dense),
            sparse=tuple(SparseFeature(name, v.num_rows)
                         for name, v in zip(source.sparse, vocabularies)),
            source_format=source.format_name,
            splits={name: total.rows for name, total in totals.items()},
            positive_rate={name: total.positives / max(total.rows, 1)
                           for name, total in totals.items()},
            extra={"dense_transform": DENSE_TRANSFORM, "min_frequency": min_frequency,
                   "vocabulary_dir": VOCABULARY_DIR, "token_key": "fnv1a64(token)",
                   "split": plan.describe(), "inputs": source.inputs,
                   "row_group_rows": row_group_rows,
                   "schema_from": os.path.abspath(schema_from) if schema_from else None,
                   **(extra or {})},
        )
        schema.save(directory)
        stats["timings"] = {
            "count_seconds": round(counted - started, 3),
            "encode_seconds": round(encoded - counted, 3),
            "total_seconds": round(encoded - started, 3),
            "rows_per_second": round(rows / max(encoded - started, 1e-9), 1),
        }
        _write_stats(directory, stats)
    logger.info("prepared %d rows into %s (%s) in %.1f s", rows, output,
                ", ".join(f"{name} {total.rows}" for name, total in totals.items()),
                encoded - started)
    return stats


def reused_vocabularies(schema_from: str, source: ChunkSource) -> tuple[list[Vocabulary], int]:
    """The vocabularies (and min frequency) of an earlier prepare whose features match `source`."""
    earlier = Schema.load(schema_from)
    path = os.path.join(schema_from, "schema.json")
    if list(earlier.dense) != source.dense:
        raise NASRecError(f"{path}: field 'dense': {list(earlier.dense)} differs from the "
                          f"input's dense features {source.dense}")
    if earlier.sparse_names != source.sparse:
        raise NASRecError(f"{path}: field 'sparse': {earlier.sparse_names} differs from the "
                          f"input's sparse features {source.sparse}")
    return (load_vocabularies(schema_from, source.sparse),
            int(earlier.extra.get("min_frequency", 1)))


def _encode(source: ChunkSource, plan: SplitPlan, vocabularies: list[Vocabulary],
            directory: str, row_group_rows: int, shard_rows: int
            ) -> tuple[dict[str, _SplitTotals], dict]:
    """Pass 2: encode every row, write it to its split, and gather the statistics."""
    encoder = Encoder(vocabularies)
    schema = shard_schema(LABEL, source.dense, source.sparse)
    writers = {name: ShardWriter(os.path.join(directory, name), schema, row_group_rows,
                                 shard_rows) for name in plan.names}
    totals = {name: _SplitTotals() for name in plan.names}
    sparse_missing = np.zeros(len(source.sparse), dtype=np.int64)
    sparse_unknown = np.zeros(len(source.sparse), dtype=np.int64)
    dense_missing = np.zeros(len(source.dense), dtype=np.int64)
    skipped: dict[str, int] = {}
    oracle = False
    assign = plan.assigner()
    with _progress("encode") as bar:
        for given, chunk in source.stream(None):
            if chunk.skipped:
                skipped[chunk.path] = skipped.get(chunk.path, 0) + chunk.skipped
            splits = assign(given, chunk.labels)
            dense, rows = encoder.encode(chunk)
            missing = chunk.keys == 0
            sparse_missing += missing.sum(axis=0)
            sparse_unknown += ((rows == 0) & ~missing).sum(axis=0)
            dense_missing += np.isnan(chunk.dense).sum(axis=0)
            for index, name in enumerate(plan.names):
                take = splits == index
                if not take.any():
                    continue
                labels = chunk.labels[take]
                writers[name].write(shard_table(schema, labels, dense[take], rows[take]))
                totals[name].rows += int(take.sum())
                totals[name].positives += int(labels.sum())
                if chunk.probability is not None:
                    oracle = True
                    totals[name].oracle_loss += _log_loss_sum(labels, chunk.probability[take])
            bar.update(len(chunk))
    for writer in writers.values():
        writer.close()
    rows = max(sum(total.rows for total in totals.values()), 1)
    stats = {
        "format": source.format_name,
        "inputs": source.inputs,
        "splits": {name: {"rows": total.rows, "positives": total.positives,
                          "positive_rate": total.positives / max(total.rows, 1),
                          **({"oracle_log_loss": total.oracle_loss / max(total.rows, 1)}
                             if oracle else {})}
                   for name, total in totals.items()},
        "skipped_rows": sum(skipped.values()),
        "skipped_rows_by_file": skipped,
        "sparse": {name: {"vocabulary_size": v.num_rows - 1, "num_rows": v.num_rows,
                          "num_rows_capped": min(v.num_rows, DEFAULT_EMBEDDING_CAP),
                          "missing_rate": float(sparse_missing[j]) / rows,
                          "out_of_vocabulary_rate": float(sparse_unknown[j]) / rows}
                   for j, (name, v) in enumerate(zip(source.sparse, vocabularies))},
        "dense": {name: {"missing_rate": float(dense_missing[j]) / rows}
                  for j, name in enumerate(source.dense)},
    }
    return totals, stats


def _log_loss_sum(labels: np.ndarray, probability: np.ndarray) -> float:
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    return float(-(labels * np.log(p) + (1 - labels) * np.log1p(-p)).sum())


def parse_inputs(texts: list[str], split_mode: str) -> list[tuple[str | None, str]]:
    """`--input` values -> `(split, path)`; `NAME=PATH` names the split with `--split given`."""
    inputs: list[tuple[str | None, str]] = []
    for text in texts:
        name, sep, path = text.partition("=")
        if split_mode == "given":
            if not sep or not name:
                raise NASRecError(f"--input '{text}': with --split given, write SPLIT=PATH "
                                  "(e.g. train=a.csv val=b.csv)")
            inputs.append((name, path))
        else:
            inputs.append((None, text))
    for _, path in inputs:
        if not os.path.isfile(path):
            raise NASRecError(f"{path}: input file not found")
    return inputs


def file_source(format_name: str, inputs: list[tuple[str | None, str]],
                options: ReaderOptions) -> ChunkSource:
    """The rows of raw files of one format, read in the order given."""
    reader = open_reader(format_name, options, inputs[0][1])

    def stream(only: str | None) -> Iterator[tuple[str | None, RawChunk]]:
        for given, path in inputs:
            if only is not None and given != only:
                continue
            for chunk in reader.chunks(path):
                yield given, chunk

    return ChunkSource(format_name, reader.dense, reader.sparse, stream,
                       [os.path.abspath(path) for _, path in inputs])
