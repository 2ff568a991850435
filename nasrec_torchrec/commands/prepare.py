"""Split and encode raw CTR logs into Parquet shards, schema.json and stats.json.

Reads Criteo Kaggle TSV, Avazu Kaggle CSV, KDD Cup 2012 track 2 training.txt, a CSV with a
header and a label column (BARS style, e.g. Frappe_x1), or Parquet with a column mapping, in
two streaming passes (memory grows with the vocabularies, not the rows). Writes
OUTPUT/{train,val,test}/part-*.parquet, schema.json, stats.json and vocab/ (the vocabularies,
reusable with --schema-from). The output appears only when complete.

The split: stratified by label and seeded (--split 80,10,10), each input's own (--split given
with SPLIT=PATH inputs), or one split for all rows (--split none). --val-from-train SHARE
carves val out of the given train input, stratified and seeded the same way, so that a given
validation file can serve as a held-out test split. Whatever the split, the vocabularies are
built from the train rows alone (with --val-from-train, the rows left in train).

Examples:
  nasrec prepare --format criteo --input train.txt --output data/criteo
  nasrec prepare --format csv --split given \\
      --input train=frappe_x1/train.csv val=frappe_x1/valid.csv --output data/frappe
  nasrec prepare --format csv --split given --val-from-train 1/9 \\
      --input train=frappe_x1/train.csv test=frappe_x1/valid.csv --output data/frappe_heldout
  nasrec prepare --format criteo --input day_23.txt --split none --split-name test \\
      --schema-from data/criteo --output data/criteo_day23
"""

from __future__ import annotations

import argparse
import json

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.data import PrepareRun, prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec prepare`: one per field of `PrepareRun`."""
    add_options(parser, PrepareRun)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and print a summary."""
    prepare_run = from_args(PrepareRun, args)
    stats = prepare(prepare_run, "nasrec prepare")
    summary = {name: {"rows": split["rows"], "positive_rate": round(split["positive_rate"], 4)}
               for name, split in stats["splits"].items()}
    features = stats["features"]
    print(f"{prepare_run.output}: {features['dense']} dense + {features['sparse']} sparse "
          f"features; {json.dumps(summary)}; skipped {stats['skipped_rows']} rows; "
          f"{stats['timings']['rows_per_second']:.0f} rows/s")
    return 0
