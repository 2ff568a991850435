"""Export a trained model for serving: one torch.export program, embeddings included.

Writes OUTPUT/model.pt2 (load it with torch.export.load alone: no TorchRec, no nasrec_torchrec),
OUTPUT/manifest.json (the program's inputs in order: dense_features [B, Dn] float32,
sparse_values [N] int64 and sparse_lengths [F, B] int64 with the features' names; the dense
transform; the token -> key rule; each feature's vocabulary file) and OUTPUT/vocab/. The
program returns one click probability per row. Rows of the run's data are scored by the
program and the fp32 model to check the export; with --precision fp16 that is the error of the
half-precision tables.

Examples:
  nasrec export --model runs/final --output serving/final
  nasrec export --model runs/final --output serving/final_fp16 --precision fp16
"""

from __future__ import annotations

import argparse

from nasrec_torchrec.settings import add_options, from_args
from nasrec_torchrec.stages.export import ExportRun, export


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec export`: one per field of `ExportRun`."""
    add_options(parser, ExportRun)


def run(args: argparse.Namespace) -> int:
    """Export; print where the program is and how it compares with the model."""
    export_run = from_args(ExportRun, args)
    manifest = export(export_run, "nasrec export")
    summary = f"{export_run.output}: {manifest['program']} ({manifest['precision']} tables)"
    check = manifest.get("check")
    if check:
        summary += (f"; on {check['rows']} {check['split']} rows the largest probability "
                    f"difference from the fp32 model is {check['max_abs_difference']:.2e}")
    print(summary)
    return 0
