"""Ranking quality of supernets trained with each path-sampling strategy (paper Tables 2-3).

On the official synthetic Criteo data (see quality_criteo.py; same work directory, so its
single-op any-conn supernet and prepared data are reused), the official-small supernet is
trained 1 epoch with each strategy (single-op any-conn, single-op single-conn, any-op
any-conn; 1/4 full-path warm-up). `nasrec rank-study` on the single-op any-conn supernet draws
K subnets and trains each from scratch (--train-steps); the other supernets are ranked against
the SAME from-scratch results (`--scratch-from`). Pearson's r and Kendall's τ between the
supernet's validation losses (head fine-tuned, and inherited without fine-tuning) and the
from-scratch ones, over the first --table-subnets subnets of every study, go to
bench_out/rank_strategies.json and a markdown table (bench_out/rank_strategies.md).
Every stage is skipped when its output exists; an interrupted study continues.
`--scratch-worker W/N` trains the reference study's subnets k with k % N == W from scratch
ahead of it (possible before any supernet exists; the study reuses every finished run), so
the from-scratch runs can use more processes than the study's one.

    python benchmarks/rank_strategies.py --threads 1 --num-subnets 50 --train-steps 200
    python benchmarks/rank_strategies.py --scratch-worker 0/2 --num-subnets 50 --train-steps 200
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_criteo import (  # noqa: E402
    REPO, STRATEGIES, prepare_data, run_rank_study, train_supernet)

# paper Table 2 (no fine-tuning; Pearson / Kendall over 100 subnets on Criteo) and Table 3
# (single-op any-conn with the head fine-tune), as summarised in ../shared/PAPER.md
PAPER = {"single_op_any_conn": {"inherited": (0.46, 0.43), "finetuned": (0.57, None)},
         "single_op_single_conn": {"inherited": (0.05, 0.02), "finetuned": (None, None)},
         "any_op_any_conn": {"inherited": (0.37, 0.28), "finetuned": (None, None)}}


def table_row(strategy: str, study: Path, count: int) -> dict[str, Any]:
    """Correlations of the first `count` subnets of `study`."""
    from nasrec_torchrec.search.rank_study import SUBNETS_FILE, correlations

    path = study / SUBNETS_FILE
    lines = path.read_text().splitlines() if path.exists() else []
    records = sorted((json.loads(line) for line in lines if line.strip()),
                     key=lambda r: r["index"])[:count]
    scratch = [r["scratch_log_loss"] for r in records]
    return {"strategy": strategy, "study": str(study), "num_subnets": len(records),
            **{kind: correlations([r[f"supernet_{kind}_log_loss"] for r in records], scratch)
               for kind in ("finetuned", "inherited")},
            "paper": PAPER[strategy]}


def markdown(rows: list[dict[str, Any]], train_steps: Any) -> str:
    """The table of the correlations, with the paper's figures beside."""
    def paper(value: Any) -> str:
        return "—" if value is None else f"{value:.2f}"

    lines = [f"Supernet vs from-scratch ({train_steps} steps) validation log loss, "
             f"{rows[0]['num_subnets']} subnets, official-small space",
             "",
             "| sampling strategy | Pearson (head FT) | Kendall (head FT) | Pearson (no FT) | "
             "Kendall (no FT) | paper Pearson / Kendall (no FT) | paper Pearson (FT) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        ft, inh, pub = row["finetuned"], row["inherited"], row["paper"]
        lines.append(f"| {row['strategy']} | {ft['pearson']:.3f} | {ft['kendall']:.3f} | "
                     f"{inh['pearson']:.3f} | {inh['kendall']:.3f} | "
                     f"{paper(pub['inherited'][0])} / {paper(pub['inherited'][1])} | "
                     f"{paper(pub['finetuned'][0])} |")
    return "\n".join(lines)


def scratch_worker(spec: str, work: Path, data: Path, num_subnets: int, train_steps: int,
                   threads: int) -> None:
    """Train worker `W/N`'s share of the reference study's subnets from scratch, with the
    settings `nasrec rank-study` derives from the supernet (batch 256, lr 0.04, cap 0.5M,
    LayerNorm, dense gradients clipped at 5, seed 0)."""
    from nasrec_torchrec.search.rank_study import train_subnets_from_scratch
    from nasrec_torchrec.search.scratch import ScratchTraining
    from nasrec_torchrec.space import get_space

    worker, workers = (int(part) for part in spec.split("/"))
    settings = ScratchTraining(steps=train_steps, batch_size=256, learning_rate=0.04,
                               embedding_cap=500000, layer_norm=True, clip_grad_norm=5.0,
                               seed=0, threads=threads)
    train_subnets_from_scratch(get_space("official-small"), str(data),
                               str(work / "rank_single_op_any_conn"), num_subnets, seed=0,
                               settings=settings, worker=worker, workers=workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "bench_out" / "quality_criteo")
    parser.add_argument("--threads", type=int, default=1, help="threads per run")
    parser.add_argument("--num-subnets", type=int, default=50,
                        help="K of the reference study (trained from scratch)")
    parser.add_argument("--table-subnets", type=int,
                        help="subnets ranked by the other strategies and in the table "
                        "(default: --num-subnets)")
    parser.add_argument("--train-steps", type=int, default=200,
                        help="from-scratch steps per subnet (batch 256)")
    parser.add_argument("--strategies", nargs="*", default=list(STRATEGIES),
                        choices=STRATEGIES, help="strategies in the table")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; tabulate the studies as they are (subnets done)")
    parser.add_argument("--scratch-worker", metavar="W/N",
                        help="only train worker W's share (of N) of the subnets from scratch")
    parser.add_argument("--output", type=Path, default=REPO / "bench_out" / "rank_strategies.json")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    count = args.table_subnets or args.num_subnets
    timings: dict[str, Any] = {}
    data = work / "data"
    if not args.report_only:
        prepare_data(work, args.threads, timings)
    if args.scratch_worker:
        scratch_worker(args.scratch_worker, work, data, args.num_subnets, args.train_steps,
                       args.threads)
        return
    reference = work / "rank_single_op_any_conn"
    if not args.report_only:
        supernet = train_supernet(work, data, "single_op_any_conn", args.threads, timings)
        run_rank_study("rank study single_op_any_conn (from scratch)", supernet, reference,
                       args.num_subnets, ["--train-steps", str(args.train_steps)],
                       args.threads, timings)
    rows = []
    for strategy in args.strategies:
        study = work / f"rank_{strategy}"
        if strategy != "single_op_any_conn" and not args.report_only:
            supernet = train_supernet(work, data, strategy, args.threads, timings)
            run_rank_study(f"rank study {strategy}", supernet, study, count,
                           ["--scratch-from", str(reference)], args.threads, timings)
        rows.append(table_row(strategy, study, count))
    table = markdown(rows, args.train_steps)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    from bench_host import host_section

    args.output.write_text(json.dumps({**host_section(args.threads),
                                       "rows": rows, "train_steps": args.train_steps,
                                       "num_subnets": args.num_subnets, "timings": timings,
                                       "table_markdown": table}, indent=2))
    args.output.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {args.output} and {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
