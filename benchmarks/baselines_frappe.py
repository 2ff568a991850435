"""Hand-made baselines on Frappe_x1 with our trainer, beside BARS' published figures.

Prepares Frappe_x1 (BARS' 7:2:1 split; train and valid here) with `nasrec prepare`, then
trains every baseline with `nasrec train --model NAME` on full tables and reports the
validation AUC / log loss and the training samples/s, next to BARS' figures (Adam, lr 1e-3,
batch 4096, embedding 10, early stopping; our trainer: Adagrad with a cosine schedule, a
fixed number of epochs, and an embedding width divisible by 4 for FBGEMM: 12).

`--settings bars` (default) gives each model BARS' best Frappe_x1 structure where it fits a
CPU (BatchNorm, dropout, DLRM's concatenation interaction, xDeepFM's one 64-map CIN layer,
DCNv2's 4 parallel cross layers); `--settings defaults` keeps each model's paper defaults.
`--option MODEL:KEY=VALUE` adds options. Writes `OUTPUT/results.json`, `OUTPUT/results.md`
and every run's directory under `OUTPUT/runs/`. The JSON holds the host (`host_record`), the
matrix-product peak measured at the start at the bodies' own heaviest product shapes, and per
model its training samples/s and their fraction of that peak (the body's forward + backward
FLOPs per sample; embeddings left out). BARS' figures are AUCs, which do not depend on the host.

    python benchmarks/baselines_frappe.py --epochs 10
    python benchmarks/baselines_frappe.py --models deepfm --option deepfm:dropout=0.3 \\
        --tag dropout03
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "frappe_x1"
MODELS = ("linear", "dlrm", "deepfm", "autoint", "xdeepfm", "dcnv2")

# BARS (reczoo/BARS, Frappe_x1): published test AUC; validation AUC of DeepFM and AutoInt+; LR ≈.
BARS_TEST_AUC = {"linear": 0.936, "dlrm": 0.9840, "deepfm": 0.9842, "autoint": 0.9848,
                 "xdeepfm": 0.9845, "dcnv2": 0.9845}
BARS_VAL_AUC = {"deepfm": 0.9852, "autoint": 0.9854}
# BARS' best Frappe_x1 settings, in our options (AutoInt: the paper's 3x2x32 attention and
# a DNN instead of BARS' 6 layers x 4 heads x 128, too slow for a CPU benchmark).
BARS_SETTINGS: dict[str, dict[str, str]] = {
    "linear": {},
    "dlrm": {"interaction": "cat", "top_layer_sizes": "400-400-400", "dropout": "0.4",
             "batch_norm": "true"},
    "deepfm": {"layer_sizes": "400-400-400", "dropout": "0.2", "batch_norm": "true"},
    "autoint": {"layer_sizes": "400-400-400", "dropout": "0.2", "batch_norm": "true"},
    "xdeepfm": {"cin_layer_sizes": "64", "layer_sizes": "400-400-400", "dropout": "0.2",
                "batch_norm": "true"},
    "dcnv2": {"num_cross_layers": "4", "structure": "parallel", "layer_sizes": "400-400-400",
              "dropout": "0.4", "batch_norm": "true"},
}
# BARS' embedding_regularizer per model on Frappe_x1: lambda/2 * ||W||^2 over whole tables,
# which is `--embedding-weight-decay lambda` with Adam (tables data-parallel on CPU)
BARS_EMBEDDING_REGULARIZER = {"linear": 0.05, "dlrm": 0.1, "deepfm": 0.05, "autoint": 0.1,
                              "xdeepfm": 0.1, "dcnv2": 0.05}
GAP_FLAG = 0.003
# training flags of `nasrec train` per recipe (the benchmark adds data, output, model,
# --full-tables, --embedding-dim, --seed, --threads)
RECIPES: dict[str, list[str]] = {
    "bars": ["--optimizer", "adam", "--lr", "1e-3", "--embedding-lr", "1e-3",
             "--batch-size", "4096", "--lr-schedule", "constant", "--epochs", "30",
             "--patience", "2", "--monitor", "auc", "--lr-plateau-factor", "0.1",
             "--embedding-init-std", "1e-4"],
    "paper": ["--optimizer", "adagrad", "--lr", "0.04", "--embedding-lr", "0.1",
              "--batch-size", "1024", "--lr-schedule", "cosine", "--epochs", "10"],
}


def nasrec(*args: str) -> list[str]:
    """The command line of `nasrec ARGS` with this interpreter."""
    return [sys.executable, "-m", "nasrec_torchrec.cli", *args]


def prepare(data_dir: Path, prepared: Path) -> None:
    """`nasrec prepare` Frappe_x1's train.csv and valid.csv (once)."""
    if (prepared / "schema.json").exists():
        print(f"prepared data: {prepared}")
        return
    for name in ("train.csv", "valid.csv"):
        if not (data_dir / name).exists():
            raise SystemExit(f"{data_dir / name}: not found (give --data-dir)")
    subprocess.run(nasrec("prepare", "--format", "csv", "--split", "given", "--input",
                          f"train={data_dir / 'train.csv'}", f"val={data_dir / 'valid.csv'}",
                          "--output", str(prepared)), check=True)


def model_options(model: str, settings: str, extra: list[str]) -> dict[str, str]:
    """The `--model-option`s of one model: the settings preset, then `--option` overrides."""
    options = dict(BARS_SETTINGS[model]) if settings == "bars" else {}
    for item in extra:
        name, sep, pair = item.partition(":")
        if not sep or "=" not in pair:
            raise SystemExit(f"--option {item!r}: expected MODEL:KEY=VALUE")
        if name == model:
            key, _, value = pair.partition("=")
            options[key] = value
    return options


def train(model: str, options: dict[str, str], args: argparse.Namespace,
          prepared: Path, run_dir: Path) -> dict:
    """One `nasrec train --model` run (or, with `--reuse`, the finished run of the same command
    already in `run_dir`); its results.json plus the wall time."""
    command = nasrec("train", "--model", model, "--data", str(prepared), "--output",
                     str(run_dir), "--full-tables", "--overwrite", "--no-progress",
                     "--embedding-dim", str(args.embedding_dim), *recipe_flags(args, model),
                     "--checkpoint-every", "0", "--log-every", "100", "--seed", str(args.seed),
                     "--device", "cpu")
    if args.threads:
        command += ["--threads", str(args.threads)]
    for key, value in options.items():
        command += ["--model-option", f"{key}={value}"]
    print("$", " ".join(command[2:]), flush=True)
    finished_run = run_dir / "results.json"
    if args.reuse and finished_run.exists():
        results = json.loads(finished_run.read_text())
        if "val" in results:
            print(f"{model}: reusing {finished_run}", flush=True)
            return {**results, "reused": True}
    start = time.perf_counter()
    log_path = run_dir.parent / f"{run_dir.name}.log"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        finished = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if finished.returncode:
        print(f"{model}: failed (exit {finished.returncode}); see {log_path}", flush=True)
        return {"error": f"exit {finished.returncode}", "log": str(log_path)}
    results = json.loads((run_dir / "results.json").read_text())
    results["wall_seconds"] = time.perf_counter() - start
    return results


def recipe_flags(args: argparse.Namespace, model: str) -> list[str]:
    """The recipe's training flags (with the model's embedding regulariser for `bars`), then
    `--epochs` and every `--train-arg` (later wins)."""
    flags = list(RECIPES[args.recipe])
    if args.recipe == "bars":
        flags += ["--embedding-weight-decay", str(BARS_EMBEDDING_REGULARIZER[model])]
    if args.epochs is not None:
        flags += ["--epochs", str(args.epochs)]
    for item in args.train_arg:
        flags += item.split("=", 1) if item.startswith("--") and "=" in item else [item]
    return flags


def training_rate(results: dict, run_dir: Path) -> Optional[float]:
    """Training samples/s: results.json's, else the mean of metrics.jsonl's windows."""
    if results.get("samples_per_second"):
        return results["samples_per_second"]
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    rates = [json.loads(line)["samples_per_second"] for line in path.read_text().splitlines()
             if line.strip()]
    return sum(rates) / len(rates) if rates else None


def body_profiles(models: list[str], args: argparse.Namespace, prepared: Path) -> dict:
    """Model -> (training FLOPs per sample, heaviest product shapes) of its body at the
    recipe's batch size on the prepared schema's features."""
    from bench_host import body_training_profile

    from nasrec_torchrec.baselines import get_baseline
    from nasrec_torchrec.data.schema import Schema

    schema = Schema.load(str(prepared))
    dense, sparse = len(schema.dense), len(schema.sparse)
    profiles = {}
    for model in models:
        flags = recipe_flags(args, model)
        batch = int(flags[max(i for i, flag in enumerate(flags) if flag == "--batch-size") + 1])
        body = get_baseline(model, dense, sparse, args.embedding_dim,
                            **model_options(model, args.settings, args.option))
        profiles[model] = body_training_profile(body.train(), batch, dense, sparse,
                                                args.embedding_dim)
    return profiles


def markdown(rows: list[dict], header: str) -> str:
    """The results as a markdown table."""
    lines = [header, "",
             "| model | options | val AUC | val log loss | best epoch | BARS val AUC "
             "| BARS test AUC | gap | train samples/s | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['options']} | failed | | | | | | | |")
            continue
        published = BARS_TEST_AUC.get(row["model"])
        gap = row["val_auc"] - published if published else None
        flag = " ⚠" if gap is not None and gap < -GAP_FLAG else ""
        rate = row["samples_per_second"]
        lines.append(
            f"| {row['model']} | {row['options'] or 'defaults'} | {row['val_auc']:.4f} | "
            f"{row['val_log_loss']:.4f} | {row.get('best_epoch') or ''} | "
            f"{BARS_VAL_AUC.get(row['model'], '')} | {published if published else ''} | "
            f"{'' if gap is None else f'{gap:+.4f}'}{flag} | "
            f"{'' if rate is None else f'{rate:,.0f}'} | {row['train_seconds']:.0f} |")
    lines += ["", f"gap: our val AUC - BARS' test AUC (BARS' val runs ~0.001 above its test). "
              f"⚠: more than {GAP_FLAG} below."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                        help="folder of Frappe_x1 train.csv and valid.csv")
    parser.add_argument("--prepared", type=Path, default=REPO / "bench_out" / "frappe_x1",
                        help="where the prepared dataset goes (reused if present)")
    parser.add_argument("--output", type=Path, default=REPO / "bench_out" / "baselines_frappe")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--settings", choices=("bars", "defaults"), default="bars")
    parser.add_argument("--option", action="append", default=[], metavar="MODEL:KEY=VALUE")
    parser.add_argument("--tag", default="", help="suffix of the result files and run dirs")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="bars",
                        help="training recipe (default bars)")
    parser.add_argument("--epochs", type=int, help="epochs (at most, with early stopping)")
    parser.add_argument("--train-arg", action="append", default=[], metavar="--FLAG=VALUE",
                        help="a `nasrec train` flag overriding the recipe, written "
                        "--train-arg=--FLAG=VALUE (repeatable)")
    parser.add_argument("--embedding-dim", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the results of runs already finished in OUTPUT/runs")
    args = parser.parse_args()

    prepare(args.data_dir, args.prepared)
    from bench_host import peak_section, throughput

    profiles = body_profiles(args.models, args, args.prepared)
    header_section = peak_section(sorted({shape for _, top in profiles.values()
                                          for shape in top}), args.threads)
    suffix = f"_{args.tag}" if args.tag else ""
    args.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models:
        options = model_options(model, args.settings, args.option)
        label = " ".join(f"{k}={v}" for k, v in options.items())
        run_dir = args.output / "runs" / f"{model}{suffix}"
        results = train(model, options, args, args.prepared, run_dir)
        row: dict = {"model": model, "options": label}
        if "error" in results:
            row.update(results)
        else:
            row.update({"val_auc": results["val"]["auc"],
                        "val_log_loss": results["val"]["log_loss"],
                        "best_epoch": results.get("best_epoch"),
                        "val_per_epoch": [
                            {"epoch": e["epoch"], **e["val"]}
                            for e in results.get("early_stopping", {}).get("epochs", [])],
                        **throughput(training_rate(results, run_dir), profiles[model][0],
                                     header_section["matmul_peak"]),
                        "train_seconds": results["train_seconds"] or results["train_samples"]
                        / (training_rate(results, run_dir) or float("inf")),
                        "steps": results["steps"],
                        "bars_test_auc": BARS_TEST_AUC.get(model)})
            print(f"{model}: val AUC {row['val_auc']:.4f}, log loss {row['val_log_loss']:.4f}, "
                  f"{row['samples_per_second'] or 0:,.0f} samples/s", flush=True)
        rows.append(row)
        # rewrite after every model: a long run leaves partial results
        settings = {key: getattr(args, key) for key in (
            "recipe", "settings", "embedding_dim", "seed", "threads")}
        settings["train_flags"] = {model: recipe_flags(args, model) for model in args.models}
        (args.output / f"results{suffix}.json").write_text(json.dumps(
            {**header_section, "settings": settings, "option": args.option, "rows": rows},
            indent=2))
        extra = " + --embedding-weight-decay (per model, BARS' regulariser)" \
            if args.recipe == "bars" else ""
        header = (f"Frappe_x1 validation, recipe {args.recipe}: `{' '.join(RECIPES[args.recipe])}`"
                  f"{extra}, embedding {args.embedding_dim}, settings: {args.settings}")
        (args.output / f"results{suffix}.md").write_text(markdown(rows, header))
    print(markdown(rows, f"results: {args.output}/results{suffix}.md"))


if __name__ == "__main__":
    main()
