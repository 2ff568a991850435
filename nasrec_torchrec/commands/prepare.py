"""Split and encode raw CTR logs into Parquet shards, schema.json and stats.json.

Reads Criteo Kaggle TSV, Avazu Kaggle CSV, KDD Cup 2012 track 2 training.txt, a CSV with a
header and a label column (BARS style, e.g. Frappe_x1), or Parquet with a column mapping, in
two streaming passes (memory grows with the vocabularies, not the rows). Writes
OUTPUT/{train,val,test}/part-*.parquet, schema.json, stats.json and vocab/ (the vocabularies,
reusable with --schema-from). The output appears only when complete.

Examples:
  nasrec prepare --format criteo --input train.txt --output data/criteo
  nasrec prepare --format csv --split given \\
      --input train=frappe_x1/train.csv val=frappe_x1/valid.csv --output data/frappe
  nasrec prepare --format criteo --input day_23.txt --split none --split-name test \\
      --schema-from data/criteo --output data/criteo_day23
"""

from __future__ import annotations

import argparse
import json

from nasrec_torchrec.data.choices import FORMATS, ON_BAD_ROW
from nasrec_torchrec.errors import NASRecError


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec prepare`."""
    parser.add_argument("--format", required=True, choices=FORMATS, help="raw input format")
    parser.add_argument("--input", required=True, nargs="+", metavar="PATH",
                        help="input files, read in order; with --split given write SPLIT=PATH")
    parser.add_argument("--output", required=True, metavar="DIR", help="prepared dataset dir")
    parser.add_argument("--split", default="80,10,10",
                        help="train,val,test percentages of a stratified seeded split "
                             "(default 80,10,10); 'given' keeps each input's named split; "
                             "'none' puts all rows in --split-name")
    parser.add_argument("--split-name", default="train",
                        help="the split of all rows with --split none (default train)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--min-frequency", type=int, default=1,
                        help="ids seen fewer times in train map to row 0 (default 1)")
    parser.add_argument("--schema-from", metavar="DIR",
                        help="reuse the vocabularies and transforms of an earlier prepare")
    parser.add_argument("--on-bad-row", choices=ON_BAD_ROW, default="error",
                        help="stop at the first bad row (default) or skip and count bad rows")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--label-column", default="label", help="csv/parquet label column")
    parser.add_argument("--dense-columns", type=_names, default=(),
                        help="csv/parquet dense columns, comma-separated (default none)")
    parser.add_argument("--sparse-columns", type=_names, default=None,
                        help="csv/parquet categorical columns (default: all other columns)")
    parser.add_argument("--kdd-user-profile", metavar="PATH",
                        help="KDD userid_profile.txt (UserID, Gender, Age) for gender and age")
    parser.add_argument("--row-group-rows", type=int, default=65_536,
                        help="rows per Parquet row group (default 65536)")
    parser.add_argument("--shard-rows", type=int, default=1 << 20,
                        help="rows per Parquet shard (default 1048576)")


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and print a summary."""
    from nasrec_torchrec.data.formats import ReaderOptions
    from nasrec_torchrec.data.prepare import SplitPlan, file_source, parse_inputs, prepare_source

    if args.kdd_user_profile and args.format != "kdd":
        raise NASRecError("--kdd-user-profile applies to --format kdd only")
    inputs = parse_inputs(args.input, args.split)
    given = tuple(dict.fromkeys(name for name, _ in inputs if name is not None))
    plan = SplitPlan.parse(args.split, args.seed, args.split_name, given)
    options = ReaderOptions(
        on_bad_row=args.on_bad_row, label_column=args.label_column,
        dense_columns=args.dense_columns, sparse_columns=args.sparse_columns,
        kdd_user_profile=args.kdd_user_profile,
    )
    source = file_source(args.format, inputs, options)
    stats = prepare_source(source, args.output, plan, min_frequency=args.min_frequency,
                           schema_from=args.schema_from, overwrite=args.overwrite,
                           row_group_rows=args.row_group_rows, shard_rows=args.shard_rows)
    summary = {name: {"rows": split["rows"], "positive_rate": round(split["positive_rate"], 4)}
               for name, split in stats["splits"].items()}
    print(f"{args.output}: {len(source.dense)} dense + {len(source.sparse)} sparse features; "
          f"{json.dumps(summary)}; skipped {stats['skipped_rows']} rows; "
          f"{stats['timings']['rows_per_second']:.0f} rows/s")
    return 0
