"""Generate a synthetic Criteo-, Avazu- or KDD-shaped CTR dataset with a planted signal.

Without --raw: a prepared dataset (the layout `nasrec prepare` writes: 80/10/10 stratified
Parquet splits, schema.json, stats.json with the generator's oracle log loss per split).
With --raw: the raw text format (Criteo train.txt, Avazu train.csv, KDD training.txt +
userid_profile.txt) for `nasrec prepare`.

Examples:
  nasrec synth --like criteo --rows 200000 --output data/synth_criteo
  nasrec synth --like kdd --rows 100000 --raw --output raw/kdd
  nasrec prepare --format kdd --input raw/kdd/training.txt \\
      --kdd-user-profile raw/kdd/userid_profile.txt --output data/kdd
"""

from __future__ import annotations

import argparse
import json

SHAPE_NAMES = ("criteo", "avazu", "kdd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec synth`."""
    parser.add_argument("--like", required=True, choices=SHAPE_NAMES, help="dataset shape")
    parser.add_argument("--rows", required=True, type=int, help="number of rows")
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to create")
    parser.add_argument("--seed", type=int, default=0, help="generator and split seed (default 0)")
    parser.add_argument("--max-cardinality", type=int, default=2_000_000,
                        help="cap on each feature's distinct ids (default 2000000)")
    parser.add_argument("--raw", action="store_true",
                        help="write the raw text format instead of a prepared dataset")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a summary."""
    from nasrec_torchrec.data.synth import write_synthetic

    stats = write_synthetic(args.like, args.rows, args.output, seed=args.seed,
                            max_cardinality=args.max_cardinality, raw=args.raw,
                            overwrite=args.overwrite)
    if args.raw:
        print(f"{args.output}: {args.rows} raw {args.like} rows in {', '.join(stats['files'])}")
    else:
        summary = {name: {"rows": split["rows"], "positive_rate": round(split["positive_rate"], 4),
                          "oracle_log_loss": round(split["oracle_log_loss"], 4)}
                   for name, split in stats["splits"].items()}
        print(f"{args.output}: synthetic {args.like}; {json.dumps(summary)}")
    return 0
