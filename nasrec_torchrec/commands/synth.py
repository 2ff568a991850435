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

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.data import SynthRun, synth


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec synth`: one per field of `SynthRun`."""
    add_options(parser, SynthRun)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a summary."""
    synth_run = from_args(SynthRun, args)
    stats = synth(synth_run, "nasrec synth")
    if synth_run.raw:
        print(f"{synth_run.output}: {synth_run.rows} raw {synth_run.like} rows in "
              f"{', '.join(stats['files'])}")
    else:
        summary = {name: {"rows": split["rows"], "positive_rate": round(split["positive_rate"], 4),
                          "oracle_log_loss": round(split["oracle_log_loss"], 4)}
                   for name, split in stats["splits"].items()}
        print(f"{synth_run.output}: synthetic {synth_run.like}; {json.dumps(summary)}")
    return 0
