"""Search a trained supernet for the best architecture: regularized evolution, random or local.

Every candidate is scored from the loaded supernet: its inherited final FC is fine-tuned
(default 500 steps of 256 rows, the supernet's optimizer family, 0.04, cosine), then it is
evaluated on the whole validation split. Under torchrun every rank loads its own copy of the
supernet and scores its share of each generation; at a fixed --threads the candidates are
the same on any number of ranks. Duplicates (same canonical architecture) are never
re-scored; with --max-mflops, candidates over the FLOPs limit are rejected before scoring.
The state is saved after every generation; --resume continues an interrupted search exactly,
on any number of ranks.

Writes candidates.jsonl (one line per candidate: architecture, val log loss, AUC, MFLOPs,
params, generation, seconds), search.json (config, best, timing), best_architecture.json
(for `nasrec train --arch`), search_state.json, and plots: progress.png, loss_cdf.png,
pareto.png.

Examples:
  nasrec search --supernet runs/supernet --data data/criteo --output runs/search
  nasrec search --supernet runs/supernet --data data/criteo --output runs/search \\
      --method random --budget 500 --max-mflops 2.0
  nasrec search --supernet runs/supernet --output runs/search --method local --budget 200 \
      --children 8
  nasrec search --supernet runs/supernet --data data/criteo --output runs/search --resume
  torchrun --nproc_per_node 2 -m nasrec_torchrec.cli search --supernet runs/supernet \\
      --output runs/search --threads 1
"""

from __future__ import annotations

import argparse
import os

from nasrec_torchrec.artifacts import BEST_ARCHITECTURE_FILE
from nasrec_torchrec.search.settings import SearchRun
from nasrec_torchrec.settings import add_options, from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec search`: one per field of `SearchRun`."""
    add_options(parser, SearchRun)


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the search; print the best candidate."""
    from nasrec_torchrec.search.run import run_search

    settings = from_args(SearchRun, args)
    summary = run_search(settings, "nasrec search")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    best = summary["best"]
    print(f"{settings.output}: {summary['evaluations']} candidates ({settings.method}), best "
          f"{settings.eval_split} log loss {best['loss']:.5f}, AUC "
          f"{best.get('auc', float('nan')):.5f}, {best.get('mflops', float('nan')):.3f} MFLOPs "
          f"-> {BEST_ARCHITECTURE_FILE}")
    return 0
