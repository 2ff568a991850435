"""Score raw logs with a trained model: one click probability per row, to Parquet.

The inputs are raw files in any `nasrec prepare` format; they are encoded with the vocabularies
and transforms of the data the model trained on (as `prepare --schema-from` does), so ids
unseen in training map to row 0. csv/parquet columns default to the model's features. The
label may be absent (a csv/parquet file without the label column, a criteo/avazu file with one
field fewer). Writes FILE.parquet with the columns file, line, probability and, when the inputs
have it, label.

Examples:
  nasrec predict --model runs/final --format criteo --input day_24.txt --output scores.parquet
  nasrec predict --model runs/frappe --format csv --input new_rows.csv --output scores.parquet
"""

from __future__ import annotations

import argparse

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.predict import PredictRun, predict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec predict`: one per field of `PredictRun`."""
    add_options(parser, PredictRun)


def run(args: argparse.Namespace) -> int:
    """Predict; print where the scores are."""
    predict_run = from_args(PredictRun, args)
    result = predict(predict_run, "nasrec predict")
    label = " with labels" if result["labelled"] else ""
    print(f"{predict_run.output}: {result['rows']} rows scored{label} by {predict_run.model} "
          f"(step {result['step']}); skipped {result['skipped_rows']} rows")
    return 0
