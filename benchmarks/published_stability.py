"""Are the default training recipe and its candidates stable on the published architectures?

Trains each of the six best architectures published with the official NASRec code
(`../shared/reference/official_configs/*.json`, read by `nasrec train --arch` as they are),
with and without LayerNorm (`--no-layer-norm`: how the official final models are trained),
under several recipes, on data of each one's shape:

- `criteo_sample` / `avazu_sample`: the real samples in `../shared/data/`, prepared with
  `nasrec prepare --split given` (train / dev / test), trained for `--real-epochs` epochs;
- `synth_criteo` / `synth_avazu` / `synth_kdd`: `nasrec synth --like SHAPE --rows N`, trained
  for `--steps` steps (one pass over at most the training split).

A recipe is a list of `nasrec train` flags (`RECIPES`): `paper` is the paper's recipe
(Adagrad 0.04, cosine, no warm-up, no clipping: the defaults before issue 14),
`warmup-0.1-clip-5` the official code's 10% warm-up and clipping, `warmup-1000-clip-5` the
defaults since (a 1000-step warm-up, clipping at 5); `warmup-1000` (no clipping) and
`defaults` (none: this checkout's defaults) run when asked.
Every run is `nasrec train --arch FILE` as the command runs it (its flags parsed by the
command's own parser, `stages.model.train_model` called in this process), at the default
batch size, one thread, seed 0, logging every step's loss. Per run: the mean training loss of
the first 25 steps, the largest step loss and its ratio to the first step's, whether the
divergence guard (`--max-loss`) stopped the run, and the validation log loss / AUC.

A run is *stable* when the guard did not fire and no step loss exceeds twice the first step's.
Writes OUTPUT.json (host record, recipes, every run, the summary) and OUTPUT.md (tables); the
runs done so far are kept in WORK/runs.jsonl, so a rerun continues (`--fresh` redoes them).

    python benchmarks/published_stability.py    # 60 runs, ~40 min on 2 busy cores
    python benchmarks/published_stability.py --recipes defaults paper --archs criteo
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL_CONFIGS = SHARED / "reference" / "official_configs"
REAL_DATA = SHARED / "data"
SHAPES = ("criteo", "avazu", "kdd")
REAL_SAMPLES = {"criteo": "criteo_sample", "avazu": "avazu_sample"}
FIRST_STEPS = 25
SPIKE_RATIO = 2.0
# Candidate recipes: `nasrec train` flags over the defaults (explicit, so that a rerun after a
# change of the defaults measures the same recipes; `defaults` is whatever the checkout has).
RECIPES: dict[str, list[str]] = {
    "paper": ["--lr-warmup-steps", "0", "--clip-grad-norm", "0"],
    "warmup-0.1-clip-5": ["--lr-warmup", "0.1", "--clip-grad-norm", "5"],
    "warmup-1000": ["--lr-warmup-steps", "1000", "--clip-grad-norm", "0"],
    "warmup-1000-clip-5": ["--lr-warmup-steps", "1000", "--clip-grad-norm", "5"],
    "defaults": [],
}
DEFAULT_RECIPES = ("paper", "warmup-0.1-clip-5", "warmup-1000-clip-5")


def nasrec(*args: str) -> list[str]:
    """The argv of a `nasrec` command run by this interpreter."""
    return [sys.executable, "-m", "nasrec_torchrec.cli", *args]


def prepare_datasets(work: Path, shapes: list[str], synth_rows: int) -> dict[str, Path]:
    """Name -> prepared dataset: the real samples and a synthetic set per shape (made once)."""
    datasets: dict[str, Path] = {}
    for shape in shapes:
        if shape in REAL_SAMPLES:
            name = REAL_SAMPLES[shape]
            raw = REAL_DATA / name
            output = work / "data" / name
            inputs = [f"{split}={raw / f'{file}.csv'}" for split, file in
                      (("train", "train"), ("val", "dev"), ("test", "test"))]
            _make(output, nasrec("prepare", "--format", shape, "--split", "given", "--input",
                                 *inputs, "--output", str(output)))
            datasets[name] = output
        output = work / "data" / f"synth_{shape}_{synth_rows}"
        _make(output, nasrec("synth", "--like", shape, "--rows", str(synth_rows), "--output",
                             str(output)))
        datasets[f"synth_{shape}"] = output
    return datasets


def _make(output: Path, command: list[str]) -> None:
    if (output / "schema.json").exists():
        return
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})


def shape_of(arch: Path) -> str:
    """criteo, avazu or kdd, from the official file name (ea_criteo_kaggle_...)."""
    return next(shape for shape in SHAPES if f"_{shape}_" in arch.name)


def train_argv(arch: Path, data: Path, output: Path, layer_norm: bool, length: list[str],
               recipe: list[str]) -> list[str]:
    """The flags of one `nasrec train` run."""
    return ["--arch", str(arch), "--data", str(data), "--output", str(output),
            *([] if layer_norm else ["--no-layer-norm"]), *length, "--threads", "1",
            "--seed", "0", "--log-every", "1", "--no-progress", "--overwrite", *recipe]


def run_training(argv: list[str]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """`nasrec train ARGV` in this process: (results, None) or (None, the divergence
    message). Any other error propagates."""
    from nasrec_torchrec.commands.train import add_arguments
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.stages.model import ModelRun, train_model
    from nasrec_torchrec.train.options import run_from_args

    parser = argparse.ArgumentParser(prog="nasrec train")
    add_arguments(parser)
    run = run_from_args(ModelRun, parser.parse_args(argv), early_stopping=True)
    try:
        return train_model(run, "nasrec train"), None
    except NASRecError as error:
        if "training diverged" not in str(error):
            raise
        return None, str(error)


def run_record(output: Path, results: Optional[dict[str, Any]], diverged: Optional[str],
               seconds: float) -> dict[str, Any]:
    """What one run did: its recipe as recorded in config.json and its loss figures."""
    from nasrec_torchrec.artifacts import CONFIG_FILE, METRICS_FILE, read_json, read_jsonl

    config = read_json(str(output / CONFIG_FILE))
    losses = [row["loss"] for row in read_jsonl(str(output / METRICS_FILE))]
    finite = [loss for loss in losses if math.isfinite(loss)]
    first = losses[:FIRST_STEPS]
    peak = max(finite) if finite else math.inf
    val = (results or {}).get("val", {})
    return {
        "steps": len(losses), "guard_fired": diverged is not None, "guard_message": diverged,
        "first_loss": losses[0] if losses else None,
        "first_steps_mean_loss": statistics.fmean(first) if first else None,
        "max_step_loss": peak, "max_step": losses.index(peak) + 1 if finite else None,
        "spike_ratio": peak / losses[0] if losses else None,
        "final_train_loss": losses[-1] if losses else None,
        "val_log_loss": val.get("log_loss"), "val_auc": val.get("auc"),
        "seconds": round(seconds, 1),
        "recipe": {key: config.get(key) for key in (
            "learning_rate", "optimizer", "lr_schedule", "lr_warmup_fraction",
            "lr_warmup_steps", "clip_grad_norm", "eps", "batch_size", "max_loss")},
    }


def is_stable(record: dict[str, Any]) -> bool:
    """No guard stop and no step loss above `SPIKE_RATIO` x the first step's."""
    return not record["guard_fired"] and record["spike_ratio"] <= SPIKE_RATIO


def _number(value: Optional[float], digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if abs(value) >= 10 else f"{value:.{digits}f}"


def markdown(records: list[dict[str, Any]], recipes: list[str]) -> str:
    """The per-run table and the per-recipe summary."""
    lines = ["| arch | data | LN | recipe | steps | first-25 mean | max step (ratio) | guard | "
             "val log loss | val AUC |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['arch']} | {r['data']} | {'yes' if r['layer_norm'] else 'no'} | "
            f"{r['recipe_name']} | {r['steps']} | {_number(r['first_steps_mean_loss'])} | "
            f"{_number(r['max_step_loss'])} ({_number(r['spike_ratio'], 3)}) | "
            f"{'FIRED' if r['guard_fired'] else '-'} | {_number(r['val_log_loss'])} | "
            f"{_number(r['val_auc'])} |")
    lines += ["", "| recipe | stable (no LN) | stable (LN) | worst first-25 mean | "
              "mean val log loss (LN) | mean val log loss (no LN, stable runs) |",
              "|---|---|---|---|---|---|"]
    for name in recipes:
        mine = [r for r in records if r["recipe_name"] == name]
        if not mine:
            continue
        with_ln = [r for r in mine if r["layer_norm"]]
        without = [r for r in mine if not r["layer_norm"]]
        worst = max(r["first_steps_mean_loss"] for r in mine)
        lines.append(
            f"| {name} | {sum(map(is_stable, without))}/{len(without)} | "
            f"{sum(map(is_stable, with_ln))}/{len(with_ln)} | {_number(worst)} | "
            f"{_mean_val(with_ln)} | {_mean_val([r for r in without if is_stable(r)])} |")
    return "\n".join(lines)


def _mean_val(records: list[dict[str, Any]]) -> str:
    values = [r["val_log_loss"] for r in records if r["val_log_loss"] is not None]
    return f"{statistics.fmean(values):.4f} ({len(values)})" if values else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "bench_out" / "published_stability")
    parser.add_argument("--output", type=Path,
                        default=REPO / "bench_out" / "published_stability")
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES),
                        choices=list(RECIPES))
    parser.add_argument("--archs", nargs="+", default=list(SHAPES), choices=SHAPES,
                        help="the shapes whose published architectures run")
    parser.add_argument("--data", nargs="+", help="only these datasets (e.g. synth_criteo)")
    parser.add_argument("--layer-norm", nargs="+", default=["no", "yes"], choices=("no", "yes"))
    parser.add_argument("--steps", type=int, default=200, help="steps on the synthetic sets")
    parser.add_argument("--synth-rows", type=int, default=160_000,
                        help="rows of each synthetic set (80%% train: one pass >= --steps)")
    parser.add_argument("--real-epochs", type=int, default=5,
                        help="epochs on the real samples (about 15 steps each)")
    parser.add_argument("--fresh", action="store_true", help="redo the runs done already")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(REPO))
    from nasrec_torchrec.analysis.host import host_record
    from nasrec_torchrec.artifacts import append_jsonl, read_jsonl, write_json, write_text
    from nasrec_torchrec.logs import setup_logging

    setup_logging(verbose=False)
    work = args.work.resolve()
    datasets = prepare_datasets(work, args.archs, args.synth_rows)
    done_file = work / "runs.jsonl"
    if args.fresh and done_file.exists():
        done_file.unlink()
    done = {r["key"]: r for r in read_jsonl(str(done_file))} if done_file.exists() else {}
    host, started = host_record(threads=1), time.perf_counter()
    records: list[dict[str, Any]] = []
    archs = sorted(p for p in OFFICIAL_CONFIGS.glob("*.json") if shape_of(p) in args.archs)
    for arch in archs:
        shape = shape_of(arch)
        names = [n for n in (REAL_SAMPLES.get(shape), f"synth_{shape}")
                 if n and (not args.data or n in args.data)]
        for data_name in names:
            real = not data_name.startswith("synth_")
            length = (["--epochs", str(args.real_epochs)] if real else
                      ["--max-steps", str(args.steps)])
            for layer_norm in (flag == "yes" for flag in args.layer_norm):
                for recipe in args.recipes:
                    key = "|".join([arch.stem, data_name, str(layer_norm), recipe,
                                    " ".join(RECIPES[recipe] + length)])
                    if key in done:
                        records.append(done[key])
                        continue
                    output = work / "runs" / f"{arch.stem}-{data_name}-" \
                        f"{'ln' if layer_norm else 'noln'}-{recipe}"
                    argv = train_argv(arch, datasets[data_name], output, layer_norm, length,
                                      RECIPES[recipe])
                    began = time.perf_counter()
                    results, diverged = run_training(argv)
                    record = {"key": key, "arch": arch.stem.removeprefix("ea_").removesuffix(
                        "_best_1shot"), "data": data_name, "layer_norm": layer_norm,
                        "recipe_name": recipe, "recipe_flags": RECIPES[recipe],
                        "command": " ".join(["nasrec", "train", *argv]),
                        **run_record(output, results, diverged, time.perf_counter() - began)}
                    append_jsonl(str(done_file), [record])
                    records.append(record)
                    print(f"{record['arch']} {data_name} LN={layer_norm} {recipe}: "
                          f"first-25 {record['first_steps_mean_loss']:.4g}, max "
                          f"{record['max_step_loss']:.4g}, guard {record['guard_fired']}, "
                          f"val {record['val_log_loss']}, {record['seconds']} s", flush=True)
    table = markdown(records, args.recipes)
    print(table)
    output = args.output.resolve()
    write_json(str(output.with_suffix(".json")), {
        "host": host, "seconds": round(time.perf_counter() - started, 1),
        "settings": {"steps": args.steps, "synth_rows": args.synth_rows,
                     "real_epochs": args.real_epochs, "first_steps": FIRST_STEPS,
                     "spike_ratio": SPIKE_RATIO},
        "recipes": {name: RECIPES[name] for name in args.recipes},
        "runs": records, "table_markdown": table})
    write_text(str(output.with_suffix(".md")), table + "\n")
    print(f"wrote {output.with_suffix('.json')} and {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
