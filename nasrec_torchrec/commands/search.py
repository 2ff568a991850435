"""Search a trained supernet for the best architecture: regularized evolution or random search.

Every candidate is scored in this process from the one loaded supernet: its inherited final
FC is fine-tuned (default 500 steps of 256 rows, Adagrad 0.04, cosine), then it is evaluated
on the whole validation split. Duplicates (same canonical architecture) are never re-scored;
with --max-mflops, candidates over the FLOPs limit are rejected before scoring. The state is
saved after every generation; --resume continues an interrupted search exactly.

Writes candidates.jsonl (one line per candidate: architecture, val log loss, AUC, MFLOPs,
params, generation, seconds), search.json (config, best, timing), best_architecture.json
(for `nasrec train --arch`), search_state.json, and plots: progress.png, loss_cdf.png,
pareto.png.

Examples:
  nasrec search --supernet runs/supernet --data data/criteo --output runs/search
  nasrec search --supernet runs/supernet --data data/criteo --output runs/search \\
      --method random --budget 500 --max-mflops 2.0
  nasrec search --supernet runs/supernet --data data/criteo --output runs/search --resume
"""

from __future__ import annotations

import argparse
from dataclasses import Field, fields
from typing import Any

from nasrec_torchrec.artifacts import BEST_ARCHITECTURE_FILE
from nasrec_torchrec.search.settings import SearchRun

_SETTINGS: dict[str, Field] = {spec.name: spec for spec in fields(SearchRun)}


def _flag(parser: argparse.ArgumentParser, name: str, **options: Any) -> None:
    """`--name` with the help, choices, metavar, required and default of `SearchRun.name`."""
    spec = _SETTINGS[name]
    for key in ("help", "metavar", "required"):
        if key in spec.metadata:
            options[key] = spec.metadata[key]
    if spec.metadata.get("choices") is not None:
        options["choices"] = tuple(spec.metadata["choices"])
    if spec.default is not None and not options.get("required"):
        options["default"] = spec.default
    parser.add_argument("--" + name.replace("_", "-"), **options)


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the supernet, the data and the candidate scoring (`ScoringRun`; shared with
    rank-study)."""
    for name in ("supernet", "data", "output", "checkpoint"):
        _flag(parser, name)
    for name in ("finetune_steps", "finetune_batch_size"):
        _flag(parser, name, type=int)
    _flag(parser, "finetune_lr", type=float)
    for name in ("eval_batch_size", "eval_rows"):
        _flag(parser, name, type=int)
    _flag(parser, "eval_split")
    for name in ("seed", "threads"):
        _flag(parser, name, type=int)
    _flag(parser, "no_progress", action="store_true")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec search` (`SearchRun`)."""
    add_scoring_arguments(parser)
    _flag(parser, "method")
    _flag(parser, "preset")
    for name in ("budget", "generations", "population", "sample_size", "children"):
        _flag(parser, name, type=int)
    _flag(parser, "max_mflops", type=float)
    _flag(parser, "finetune")
    _flag(parser, "resume", action="store_true")
    _flag(parser, "overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the search; print the best candidate."""
    from nasrec_torchrec.search.run import run_search

    settings = SearchRun.from_values(vars(args))
    summary = run_search(settings)
    best = summary["best"]
    print(f"{settings.output}: {summary['evaluations']} candidates ({settings.method}), best "
          f"{settings.eval_split} log loss {best['loss']:.5f}, AUC "
          f"{best.get('auc', float('nan')):.5f}, {best.get('mflops', float('nan')):.3f} MFLOPs "
          f"-> {BEST_ARCHITECTURE_FILE}")
    return 0
