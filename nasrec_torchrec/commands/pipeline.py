"""Run the whole search in one command: prepare, train-supernet, search, retrain, final.

Stage parameters come from an experiment config (--config specs/experiments/NAME.yaml; the
paper's settings by default), overridden by --set SECTION.FIELD=VALUE and the flags below;
the effective config is written to OUTPUT/pipeline.json with each stage's command line,
status and time. Everything goes under one directory: OUTPUT/{data,supernet,search,retrain,
final}. A stage whose results exist is skipped and an interrupted one resumes, so running
the same command again continues the pipeline. Prints where the final report is.

--data is a prepared dataset; with --synth (or a config that prepares raw logs) it is where
the data is written (default OUTPUT/data).

Examples:
  nasrec pipeline --config specs/experiments/demo.yaml --output runs/demo
  nasrec pipeline --synth criteo --rows 200000 --output runs/synth --set retrain.top_k=5
  nasrec pipeline --config specs/experiments/frappe-nasrec-small.yaml --output runs/frappe
  nasrec pipeline --data data/criteo --config specs/experiments/criteo-nasrec-full.yaml \\
      --output runs/criteo --resume
"""

from __future__ import annotations

import argparse

from nasrec_torchrec.pipeline.stages import STAGES
from nasrec_torchrec.stages.data import synth_shapes
from nasrec_torchrec.train.config import DEVICE_CHOICES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec pipeline`."""
    parser.add_argument("--data", metavar="DIR",
                        help="prepared dataset (or where --synth / the config's prepare "
                        "section writes it; default OUTPUT/data)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="the pipeline's directory (one subdirectory per stage)")
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="experiment config (specs/experiments/*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a config field (repeatable), e.g. "
                        "supernet.max_steps=200 or search.budget=30")
    parser.add_argument("--synth", choices=synth_shapes(),
                        help="make a synthetic dataset of this shape (prepare.synth)")
    parser.add_argument("--rows", type=int, help="rows of the synthetic dataset (prepare.rows)")
    parser.add_argument("--seed", type=int, help="seed of every stage")
    parser.add_argument("--threads", type=int, help="intra-op threads")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="compute device")
    parser.add_argument("--stop-after", choices=STAGES,
                        help="run the stages up to this one only")
    parser.add_argument("--resume", action="store_true",
                        help="accepted for launchers: the pipeline always continues an "
                        "earlier run in --output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run the pipeline; print the stage times and where the report is."""
    import os

    from nasrec_torchrec.pipeline.config import load_experiment
    from nasrec_torchrec.pipeline.stages import run_pipeline

    overrides = list(args.set)
    for name, value in (("prepare.synth", args.synth), ("prepare.rows", args.rows),
                        ("seed", args.seed), ("threads", args.threads),
                        ("device", args.device)):
        if value is not None:
            overrides.append(f"{name}={value}")
    if args.synth:
        overrides.append("prepare.format=null")
    if args.no_progress:
        overrides.append("progress=false")
    config = load_experiment(args.config, overrides)
    record = run_pipeline(config, args.output, args.data, args.stop_after,
                          args.config or "config")
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports
    print(f"{'stage':<10} {'status':<8} {'seconds':>9}")
    for name, entry in record["stages"].items():
        seconds = entry.get("seconds")
        print(f"{name:<10} {entry.get('status', '-'):<8} "
              f"{'-' if seconds is None else format(seconds, '.1f'):>9}")
    final = record.get("final")
    if final:
        for split, metrics in (final.get("metrics") or {}).items():
            print(f"final {split}: log loss {metrics['log_loss']:.5f}, AUC {metrics['auc']:.5f}")
    if record.get("report"):
        print(f"report: {record['report']}")
    return 0
