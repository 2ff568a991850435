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
import json
import logging
import os
import time
from typing import Any

logger = logging.getLogger(__name__)

CANDIDATES_FILE = "candidates.jsonl"
STATE_FILE = "search_state.json"
SUMMARY_FILE = "search.json"
BEST_FILE = "best_architecture.json"


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the supernet, the data and the candidate scoring (shared with rank-study)."""
    parser.add_argument("--supernet", required=True, metavar="DIR",
                        help="a `nasrec train-supernet` run directory")
    parser.add_argument("--data", metavar="DIR",
                        help="prepared dataset (default: the one the supernet trained on)")
    parser.add_argument("--output", required=True, metavar="DIR", help="where results go")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="a step_* checkpoint of the supernet (default: the latest)")
    parser.add_argument("--finetune-steps", type=int, default=500,
                        help="head fine-tuning steps per candidate (default 500)")
    parser.add_argument("--finetune-batch-size", type=int, default=256,
                        help="rows per fine-tuning step (default 256)")
    parser.add_argument("--finetune-lr", type=float, default=0.04,
                        help="Adagrad learning rate of the fine-tuning (default 0.04, cosine)")
    parser.add_argument("--eval-batch-size", type=int, default=4096,
                        help="rows per evaluation batch (default 4096)")
    parser.add_argument("--eval-rows", type=int,
                        help="score on the first N validation rows only (default: all)")
    parser.add_argument("--eval-split", default="val", help="split scored (default val)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the search and of the fine-tuning data order")
    parser.add_argument("--threads", type=int,
                        help="intra-op threads (default: OMP_NUM_THREADS or the cores; on a "
                        "busy machine 1 is often fastest)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `nasrec search`."""
    add_scoring_arguments(parser)
    parser.add_argument("--method", choices=("evolution", "random"), default="evolution",
                        help="search strategy (default evolution)")
    parser.add_argument("--preset", choices=("paper", "official"), default="paper",
                        help="evolution settings: paper (population 64, sample 32, 16 "
                        "children, 100 generations) or official (128 / 64 / 8 / 240)")
    parser.add_argument("--budget", type=int,
                        help="distinct candidates scored at most (random search: required)")
    parser.add_argument("--generations", type=int, help="override the preset's generations")
    parser.add_argument("--population", type=int, help="override the population size")
    parser.add_argument("--sample-size", type=int, help="override the parent sample size")
    parser.add_argument("--children", type=int, help="override the children per generation")
    parser.add_argument("--max-mflops", type=float,
                        help="reject candidates above this many MFLOPs per sample (fvcore)")
    parser.add_argument("--finetune", choices=("head", "none", "full"), default="head",
                        help="scoring: fine-tune the final FC (default), nothing, or every "
                        "dense weight of the subnet")
    parser.add_argument("--resume", action="store_true",
                        help="continue the search saved in --output")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier search in --output")


def make_scorer(args: argparse.Namespace, finetune: str = "head") -> tuple[Any, Any]:
    """(`LoadedSupernet`, `SubnetScorer`) from the shared scoring flags."""
    from nasrec_torchrec.search.scoring import ScoringConfig, SubnetScorer, load_supernet

    loaded = load_supernet(args.supernet, args.data, args.checkpoint)
    config = ScoringConfig(
        finetune=finetune, finetune_steps=args.finetune_steps,
        batch_size=args.finetune_batch_size, learning_rate=args.finetune_lr,
        seed=args.seed, eval_split=args.eval_split, eval_batch_size=args.eval_batch_size,
        eval_rows=args.eval_rows)
    return loaded, SubnetScorer(loaded.model, loaded.data, loaded.embedding_cap, config)


def set_threads(threads: Any) -> None:
    """Pin the intra-op threads as the trainer does."""
    from nasrec_torchrec.train.distributed import set_threads as pin

    pin(threads, 1)


def _truncate_lines(path: str, keep: int) -> None:
    if not os.path.exists(path):
        return
    with open(path) as handle:
        lines = [line for line in handle if line.strip()][:keep]
    with open(path, "w") as handle:
        handle.writelines(lines)


def _prepare_output(args: argparse.Namespace) -> None:
    from nasrec_torchrec.errors import NASRecError

    os.makedirs(args.output, exist_ok=True)
    state = os.path.join(args.output, STATE_FILE)
    if os.path.exists(state) and not args.resume:
        if not args.overwrite:
            raise NASRecError(f"{args.output}: holds an earlier search; continue it with "
                              "--resume, replace it with --overwrite or choose another --output")
        for name in (STATE_FILE, CANDIDATES_FILE, SUMMARY_FILE, BEST_FILE):
            path = os.path.join(args.output, name)
            if os.path.exists(path):
                os.remove(path)
    if not args.resume and os.path.exists(os.path.join(args.output, CANDIDATES_FILE)):
        os.remove(os.path.join(args.output, CANDIDATES_FILE))


def write_plots(output: str, search: Any, max_mflops: Any) -> dict[str, str]:
    """progress.png, loss_cdf.png and pareto.png of a search."""
    from nasrec_torchrec.analysis.plots import plot_loss_cdf, plot_pareto, plot_search_progress
    from nasrec_torchrec.search.pareto import pareto_front

    losses = [c.loss for c in search.candidates]
    mflops = [float(c.result.get("mflops", float("nan"))) for c in search.candidates]
    front = pareto_front(list(zip(mflops, losses)))
    return {
        "progress": plot_search_progress(search.history, os.path.join(output, "progress.png"),
                                         title=f"{search.kind} search"),
        "loss_cdf": plot_loss_cdf({search.kind: losses}, os.path.join(output, "loss_cdf.png")),
        "pareto": plot_pareto(mflops, losses, front, os.path.join(output, "pareto.png"),
                              max_mflops=max_mflops),
    }


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the search; print the best candidate."""
    from nasrec_torchrec.analysis.flops import FLOPS_CONVENTION
    from nasrec_torchrec.errors import NASRecError
    from nasrec_torchrec.search.evolution import RegularizedEvolution, get_preset
    from nasrec_torchrec.search.pareto import pareto_front
    from nasrec_torchrec.search.random_search import RandomSearch

    if args.method == "random" and not args.budget:
        raise NASRecError("search: --method random needs --budget N")
    set_threads(args.threads)
    _prepare_output(args)
    started = time.perf_counter()
    loaded, scorer = make_scorer(args, args.finetune)
    load_seconds = time.perf_counter() - started
    space = loaded.supernet.space
    candidates_path = os.path.join(args.output, CANDIDATES_FILE)
    progress: Any = None

    def on_candidate(record: dict[str, Any]) -> None:
        with open(candidates_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if progress is not None:
            progress.update(1)
            best = search.best()
            progress.set_postfix(best=f"{best.loss:.5f}" if best else "-",
                                 gen=record["generation"])

    def cost(architecture: Any) -> float:
        return scorer.cost(architecture).mflops

    common = dict(seed=args.seed, budget=args.budget, cost=cost, max_mflops=args.max_mflops,
                  state_path=os.path.join(args.output, STATE_FILE), on_candidate=on_candidate)
    evolution_config = None
    if args.method == "evolution":
        evolution_config = get_preset(
            args.preset, generations=args.generations, population_size=args.population,
            sample_size=args.sample_size, num_children=args.children)
        search: Any = RegularizedEvolution(space, scorer.score, evolution_config, **common)
        expected = evolution_config.initial_size + \
            evolution_config.generations * evolution_config.num_children
    else:
        search = RandomSearch(space, scorer.score, **common)
        expected = args.budget
    if args.budget:
        expected = min(expected, args.budget)
    if args.resume and search.resume():
        _truncate_lines(candidates_path, search.evaluations)  # drop a partial generation
    elif args.resume:
        logger.info("--resume: no saved search in %s, starting afresh", args.output)
        _truncate_lines(candidates_path, 0)
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=expected, initial=search.evaluations, unit="candidate",
                        desc=f"search ({args.method})", dynamic_ncols=True)
    search_started = time.perf_counter()
    try:
        best = search.run()
    finally:
        if progress is not None:
            progress.close()
    search_seconds = time.perf_counter() - search_started
    if best is None:
        raise NASRecError("search: no candidate was scored")

    with open(os.path.join(args.output, BEST_FILE), "w") as handle:
        handle.write(best.architecture.to_json(indent=2) + "\n")
    plots = write_plots(args.output, search, args.max_mflops)
    losses = [c.loss for c in search.candidates]
    mflops = [float(c.result.get("mflops", float("nan"))) for c in search.candidates]
    scored_seconds = [float(c.result.get("seconds", 0.0)) for c in search.candidates]
    summary = {
        "config": {key: value for key, value in vars(args).items() if not key.startswith("_")},
        "scoring": scorer.config.to_dict(),
        "evolution": evolution_config.to_dict() if evolution_config else None,
        "supernet": {"run_dir": loaded.run_dir, "checkpoint": loaded.checkpoint,
                     "step": loaded.step, "space": space.name, "data": loaded.data,
                     "embedding_cap": loaded.embedding_cap},
        **search.summary(),
        "best_architecture_file": BEST_FILE,
        "pareto_front": pareto_front(list(zip(mflops, losses))),
        "history": search.history,
        "flops_convention": FLOPS_CONVENTION,
        "timing": {"load_seconds": load_seconds, "search_seconds_this_run": search_seconds,
                   "candidate_seconds_total": sum(scored_seconds),
                   "candidate_seconds_mean": sum(scored_seconds) / len(scored_seconds)},
        "plots": {name: os.path.basename(path) for name, path in plots.items()},
    }
    with open(os.path.join(args.output, SUMMARY_FILE), "w") as handle:
        json.dump(summary, handle, indent=2, default=str)
    print(f"{args.output}: {search.evaluations} candidates ({args.method}), best "
          f"{args.eval_split} log loss {best.loss:.5f}, AUC {best.result.get('auc', float('nan')):.5f}, "
          f"{best.result.get('mflops', float('nan')):.3f} MFLOPs -> {BEST_FILE}")
    return 0
