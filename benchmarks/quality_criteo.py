"""Quality side by side with the official NASRec implementation on the data it was measured on.

The data: `../shared/tools/gen_synth_criteo.py` (200k train / 25k val / 25k test raw Criteo
TSV, byte-identical on every run), prepared with `nasrec prepare --format criteo --split given`.
Every stage runs the real command at the official hyper-parameters (batch 256, 1 epoch,
Adagrad lr 0.04 with eps 0.01, 10% LR warm-up then cosine, tables capped at 0.5M rows,
dim 16, the dense gradients' global norm clipped at 5.0 as the official code does (its
clipping also covers the tables; our fused tables update inside the backward, unclipped):

  (a) `nasrec train` of the official best Criteo Full architecture from scratch (no LayerNorm,
      as the official final models);
  (b) `nasrec train-supernet --space official-small --strategy single_op_any_conn` with the
      full-path warm-up over the first 1/4 of the steps. The official figure is the supernet's
      validation loss at the end of training, where its forward draws a new random path for
      every evaluation batch: the loss of random single-op any-conn subnets with inherited
      weights. Ours: the K random subnets of `nasrec rank-study` (the same strategy), each
      scored with inherited weights on the whole validation split; the table gives their mean
      log loss and mean AUC, and the full path's figures beside;
  (c) the best of those K subnets scored with the head fine-tune (500 steps at batch 256):
      a random search of K candidates; with --generations > 0 also `nasrec search`
      (regularized evolution) and its best.

The rank study is the one of rank_strategies.py (same work directory and settings): its
from-scratch runs are item 2 of the study, so whichever script runs first does it.
Each stage is skipped when its output exists (rerun to continue); --report-only runs
nothing and reports what exists (a study in progress: the subnets done so far). Prints a
table (ours, official, constant predictor, the generator's oracle) and writes
bench_out/quality_criteo.json.

    python benchmarks/quality_criteo.py --threads 1 --num-subnets 50 --train-steps 200
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GENERATOR = SHARED / "tools" / "gen_synth_criteo.py"
OFFICIAL_ARCH = (SHARED / "reference" / "official_configs"
                 / "ea_criteo_kaggle_xlarge_best_1shot.json")
# val log loss / AUC of the official implementation on this data (issue 5)
OFFICIAL = {"a": (0.3611, 0.8313), "b": (0.3901, 0.796), "c": (0.3786, 0.810)}
# the generator's own oracle on the validation split (../shared/tools/README.md)
ORACLE = (0.2931, 0.897)
# the official training hyper-parameters (nasrec/main_train.py, train_supernet.py)
TRAINING = ["--batch-size", "256", "--epochs", "1", "--lr", "0.04", "--embedding-lr", "0.04",
            "--eps", "0.01", "--lr-schedule", "cosine", "--lr-warmup", "0.1",
            "--embedding-cap", "500000", "--embedding-dim", "16", "--clip-grad-norm", "5",
            "--log-every", "50", "--no-progress"]
STRATEGIES = ("single_op_any_conn", "single_op_single_conn", "any_op_any_conn")


def nasrec(*args: str) -> list[str]:
    """The argv of a `nasrec` command run by this interpreter."""
    return [sys.executable, "-m", "nasrec_torchrec.cli", *args]


def run_stage(name: str, done: Path, command: list[str], log: Path, threads: int,
              timings: dict[str, Any]) -> None:
    """Run `command` unless `done` exists; its output to `log`, its wall time to `timings`."""
    if done.exists():
        print(f"[{name}] done already ({done})", flush=True)
        return
    print(f"[{name}] {' '.join(command)}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command, check=True, env=env, stdout=handle, stderr=subprocess.STDOUT,
                       cwd=REPO)
    timings[name] = {"seconds": round(time.perf_counter() - started, 1),
                     "load": os.getloadavg()[0], "command": command}
    print(f"[{name}] {timings[name]['seconds']} s (load {timings[name]['load']:.2f})", flush=True)


def prepare_data(work: Path, threads: int, timings: dict[str, Any]) -> Path:
    """Generate the raw TSV (official data) and prepare it with its own train/val/test split."""
    raw = work / "raw" / "shard-0"
    run_stage("generate", raw / "test.txt",
              [sys.executable, str(GENERATOR), "--out", str(work / "raw")],
              work / "generate.log", threads, timings)
    data = work / "data"
    run_stage("prepare", data / "schema.json",
              nasrec("prepare", "--format", "criteo", "--split", "given", "--input",
                     *(f"{split}={raw / f'{split}.txt'}" for split in ("train", "val", "test")),
                     "--output", str(data)),
              work / "prepare.log", threads, timings)
    return data


def train_supernet(work: Path, data: Path, strategy: str, threads: int,
                   timings: dict[str, Any]) -> Path:
    """The official-small supernet trained 1 epoch with `strategy` and the 1/4 path warm-up."""
    output = work / f"supernet_{strategy}"
    run_stage(f"supernet {strategy}", output / "results.json",
              nasrec("train-supernet", "--space", "official-small", "--strategy", strategy,
                     "--path-warmup", "0.25", "--data", str(data), "--output", str(output),
                     "--threads", str(threads), "--overwrite", *TRAINING),
              work / f"supernet_{strategy}.log", threads, timings)
    return output


def constant_predictor(data: Path) -> float:
    """Validation log loss of predicting the training positive rate for every row."""
    splits = json.loads((data / "stats.json").read_text())["splits"]
    p, q = splits["train"]["positive_rate"], splits["val"]["positive_rate"]
    return -(q * math.log(p) + (1 - q) * math.log(1 - p))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _val(run: Path) -> tuple[float, float]:
    path = run / "results.json"
    if not path.exists():
        return math.nan, math.nan
    metrics = json.loads(path.read_text())["val"]
    return metrics["log_loss"], metrics["auc"]


def run_rank_study(name: str, supernet: Path, study: Path, count: int, extra: list[str],
                   threads: int, timings: dict[str, Any]) -> None:
    """Run (or continue) `nasrec rank-study` of `count` subnets unless it finished them."""
    summary = study / "rank_study.json"
    if summary.exists() and json.loads(summary.read_text())["num_subnets"] >= count:
        print(f"[{name}] done already ({study})", flush=True)
        return
    run_stage(name, study / "never", nasrec(
        "rank-study", "--supernet", str(supernet), "--output", str(study), "--num-subnets",
        str(count), "--threads", str(threads), "--no-progress", *extra),
        study.parent / f"{study.name}.log", threads, timings)


def quality_rows(data: Path, scratch: Path, supernet: Path, study: Path, search: Path
                 ) -> list[tuple[str, float, float, Any, dict[str, Any]]]:
    """(figure, log loss, AUC, official (loss, AUC) or None, details) of every row."""
    from nasrec_torchrec.search.rank_study import SUBNETS_FILE

    subnets = _read_jsonl(study / SUBNETS_FILE)
    inherited = [(r["supernet_inherited_log_loss"], r["supernet_inherited_auc"])
                 for r in subnets]
    mean = (statistics.fmean(x[0] for x in inherited), statistics.fmean(x[1] for x in inherited)) \
        if inherited else (math.nan, math.nan)
    rows = [("(a) official best Full arch, from scratch", *_val(scratch), OFFICIAL["a"], {}),
            (f"(b) Small supernet, random paths, inherited (mean of {len(subnets)})", *mean,
             OFFICIAL["b"], {"log_losses": [x[0] for x in inherited]}),
            ("(b') Small supernet, full path", *_val(supernet), None, {})]
    if subnets:
        best = min(subnets, key=lambda r: r["supernet_finetuned_log_loss"])
        rows.append((f"(c) best of {len(subnets)} random subnets, head fine-tuned",
                     best["supernet_finetuned_log_loss"], best["supernet_finetuned_auc"],
                     OFFICIAL["c"], {"architecture": best["architecture"],
                                     "mflops": best["mflops"],
                                     "scratch_log_loss": best["scratch_log_loss"]}))
    candidates = _read_jsonl(search / "candidates.jsonl")
    if candidates:
        best = min(candidates, key=lambda c: c["loss"])
        rows.append((f"(c') best of {len(candidates)} evolution candidates, head fine-tuned",
                     best["log_loss"], best["auc"], OFFICIAL["c"],
                     {"architecture": best["architecture"], "mflops": best.get("mflops")}))
    rows += [("constant predictor (train positive rate)", constant_predictor(data), 0.5, None,
              {}), ("generator's oracle", ORACLE[0], ORACLE[1], None, {})]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "bench_out" / "quality_criteo")
    parser.add_argument("--threads", type=int, default=1, help="threads per run")
    parser.add_argument("--num-subnets", type=int, default=50, help="K of the rank study")
    parser.add_argument("--train-steps", type=int, default=200,
                        help="the rank study's from-scratch steps per subnet")
    parser.add_argument("--generations", type=int, default=0,
                        help="also run an evolution search of this many generations (c)")
    parser.add_argument("--population", type=int, default=16, help="evolution population")
    parser.add_argument("--sample-size", type=int, default=8, help="evolution parent sample")
    parser.add_argument("--children", type=int, default=8, help="children per generation")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; report the stages' outputs as they are")
    parser.add_argument("--output", type=Path, default=REPO / "bench_out" / "quality_criteo.json")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, Any] = {}
    data, scratch = work / "data", work / "official_best_scratch"
    supernet, study = work / "supernet_single_op_any_conn", work / "rank_single_op_any_conn"
    search = work / "search"
    if not args.report_only:
        prepare_data(work, args.threads, timings)
        run_stage("(a) official best from scratch", scratch / "results.json",
                  nasrec("train", "--arch", str(OFFICIAL_ARCH), "--no-layer-norm", "--data",
                         str(data), "--output", str(scratch), "--threads", str(args.threads),
                         "--overwrite", *TRAINING),
                  work / "official_best_scratch.log", args.threads, timings)
        train_supernet(work, data, "single_op_any_conn", args.threads, timings)
        run_rank_study("(b, c) rank study", supernet, study, args.num_subnets,
                       ["--train-steps", str(args.train_steps)], args.threads, timings)
        if args.generations > 0:
            run_stage("(c) evolution search", search / "search.json",
                      nasrec("search", "--supernet", str(supernet), "--output", str(search),
                             "--population", str(args.population), "--sample-size",
                             str(args.sample_size), "--children", str(args.children),
                             "--generations", str(args.generations), "--threads",
                             str(args.threads), "--no-progress", "--overwrite"),
                      work / "search.log", args.threads, timings)
    rows = quality_rows(data, scratch, supernet, study, search)
    lines = ["| figure (val, 1 epoch) | ours log loss | ours AUC | official log loss | "
             "official AUC |", "|---|---|---|---|---|"]
    for name, loss, auc, official, _ in rows:
        theirs = f"{official[0]:.4f} | {official[1]:.4f}" if official else "— | —"
        lines.append(f"| {name} | {loss:.4f} | {auc:.4f} | {theirs} |")
    table = "\n".join(lines)
    print(table)
    from bench_host import host_section

    result = {
        **host_section(args.threads),
        "data": str(data), "threads": args.threads, "training_flags": TRAINING,
        "rows": [{"figure": name, "log_loss": loss, "auc": auc,
                  "official_log_loss": official[0] if official else None,
                  "official_auc": official[1] if official else None, **details}
                 for name, loss, auc, official, details in rows],
        "timings": timings, "table_markdown": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
