"""The ranking study (paper §4, Fig. 3, Tables 2-3): does the supernet rank subnets as
training them from scratch does?

K distinct random subnets (seeded `sample_architecture`) are each scored from the supernet
twice (inherited weights as they are, and after the head fine-tune) and trained from scratch
by the project's trainer (`search.scratch`: a short fixed budget, or a whole recipe such as
the final model's, early stopping included), in this process, or the from-scratch
figures are taken from an earlier study of the same subnets (`scratch_from`), so supernets
trained with different sampling strategies are ranked against one set of from-scratch runs
(paper Tables 2-3). With `ScratchTraining.seeds` > 1 each subnet is trained with several
seeds: the supernet is compared with their means, and the first two seeds with each other
(`reproducibility`: how well one from-scratch training ranks another). Under torchrun the
subnets are spread over the ranks: each scores its share from its own copy of the supernet
and trains it from scratch in a fresh one-rank process, rank 0 writes the records. Pearson's r and
Kendall's τ (scipy.stats) between the supernet's and the from-scratch validation log losses,
and between their validation AUCs, say how well the supernet ranks. Each subnet's figures are
appended to a JSONL file as soon as they exist (on several ranks: once every rank's share is
done; the finished from-scratch runs trained with the same settings are reused), so an
interrupted study continues where it stopped; a study continued with other from-scratch
settings than its finished subnets' is refused.
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from nasrec_torchrec.artifacts import REPEAT_DIR, append_jsonl, read_jsonl
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.scratch import (
    ScratchTraining, combine_seeds, finished_scratch_run, scratch_config, scratch_fields,
    scratch_run_changes, seed_settings, train_from_scratch)
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.space.sampling import sample_architecture
from nasrec_torchrec.space.search_space import SearchSpace

logger = logging.getLogger(__name__)

SUBNETS_FILE = "rank_study_subnets.jsonl"


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def correlations(supernet_losses: Sequence[Optional[float]],
                 scratch_losses: Sequence[Optional[float]]) -> dict[str, Any]:
    """Pearson's r, Kendall's τ (tau-b) and Spearman's ρ between two lists of a metric (log
    losses, or AUCs), with p-values.

    Pairs with a missing or non-finite value are left out; fewer than 3 pairs give NaN.
    """
    from scipy import stats

    pairs = [(float(a), float(b)) for a, b in zip(supernet_losses, scratch_losses)
             if _finite(a) and _finite(b)]
    result: dict[str, Any] = {"n": len(pairs)}
    if len(pairs) < 3:
        return {**result, "pearson": math.nan, "pearson_p": math.nan, "kendall": math.nan,
                "kendall_p": math.nan, "spearman": math.nan, "spearman_p": math.nan}
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    pearson = stats.pearsonr(x, y)
    kendall = stats.kendalltau(x, y)
    spearman = stats.spearmanr(x, y)
    return {**result,
            "pearson": float(pearson[0]), "pearson_p": float(pearson[1]),
            "kendall": float(kendall[0]), "kendall_p": float(kendall[1]),
            "spearman": float(spearman[0]), "spearman_p": float(spearman[1])}


def sample_subnets(space: SearchSpace, count: int, seed: int = 0) -> list[Architecture]:
    """`count` random architectures, distinct by `canonical()`, from `Random(seed)`."""
    rng = random.Random(seed)
    found: list[Architecture] = []
    seen: set[Architecture] = set()
    attempts = 0
    while len(found) < count:
        attempts += 1
        if attempts > 100 * count + 100:
            raise NASRecError(f"rank study: could not draw {count} distinct subnets of "
                              f"'{space.name}'")
        architecture = sample_architecture(space, rng)
        key = architecture.canonical()
        if key not in seen:
            seen.add(key)
            found.append(architecture)
    return found


def train_subnets_from_scratch(space: SearchSpace, data: str, output: str, num_subnets: int,
                               seed: int, settings: ScratchTraining, worker: int = 0,
                               workers: int = 1) -> None:
    """Train this worker's share of a study's subnets from scratch ahead of the study.

    Worker `w` of `n` takes the indices `k` with `k % n == w` in the study's order; started
    before the study, the workers stay ahead of it and it reuses every finished run it finds.
    """
    from nasrec_torchrec.train.distributed import init_distributed, teardown

    architectures = sample_subnets(space, num_subnets, seed)
    context = init_distributed("cpu", settings.threads)
    try:
        for index in range(worker, num_subnets, workers):
            run_dir = subnet_dir(output, index)
            if finished_scratch_run(architectures[index], data, run_dir, settings) is None:
                train_from_scratch(architectures[index], data, run_dir, settings, context)
    finally:
        teardown(context)


def _read_done(path: str) -> list[dict[str, Any]]:
    return read_jsonl(path) if os.path.exists(path) else []


SCRATCH_FIELDS = ("scratch_log_loss", "scratch_auc", "scratch_steps", "scratch_seconds")
OPTIONAL_SCRATCH_FIELDS = ("scratch_best_epoch",  # an early-stopped run's
                           "scratch_seeds", "scratch_log_loss_per_seed",  # several seeds'
                           "scratch_auc_per_seed")


def subnet_dir(study: str, index: int, offset: int = 0) -> str:
    """Subnet `index`'s from-scratch run directory in the study directory `study` (of its
    run with seed + `offset`: `repeat_<offset>/` inside the first)."""
    first = os.path.join(study, "subnets", f"{index:04d}")
    return os.path.join(first, REPEAT_DIR.format(index=offset)) if offset else first


def seed_pairs(records: Sequence[dict[str, Any]], metric: str
               ) -> Optional[tuple[list[float], list[float]]]:
    """The first two seeds' from-scratch `metric` ("log_loss" or "auc") of every record, when
    each has several seeds (None otherwise)."""
    per_seed = [record.get(f"scratch_{metric}_per_seed") or [] for record in records]
    if not records or min(len(values) for values in per_seed) < 2:
        return None
    return [values[0] for values in per_seed], [values[1] for values in per_seed]


def refuse_other_settings(where: str, architecture: Architecture, data: str, run_dir: str,
                          settings: ScratchTraining, remedy: str, required: bool = False
                          ) -> None:
    """Raise `NASRecError` (`where` leads, `remedy` ends) when the finished from-scratch run
    in `run_dir` was trained with other settings than `architecture` on `data` with
    `settings`, naming them; a missing run passes unless `required`."""
    results, changes = scratch_run_changes(architecture, data, run_dir, settings)
    if results is None and required:
        raise NASRecError(f"{where}: no finished run in {run_dir} to compare the from-scratch "
                          f"settings with; {remedy}")
    if changes:
        raise NASRecError(f"{where}: trained from scratch with other settings "
                          f"({run_dir}): {'; '.join(changes)}; {remedy}")


def read_scratch_results(study: str, architectures: Sequence[Architecture],
                         settings: Optional[ScratchTraining] = None, data: str = ""
                         ) -> list[dict[str, Any]]:
    """The from-scratch fields of `architectures` from the study directory `study`.

    The study must hold every one of them at the same index (same space, seed and K or a
    larger K); with `settings`, each must have been trained with them on `data` (the whole
    recipe and the model are compared); anything else raises `NASRecError`.
    """
    path = os.path.join(study, SUBNETS_FILE)
    if not os.path.exists(path):
        raise NASRecError(f"--scratch-from {study}: no {SUBNETS_FILE} (not a rank-study output)")
    by_index = {record["index"]: record for record in _read_done(path)}
    found = []
    for index, architecture in enumerate(architectures):
        record = by_index.get(index)
        if record is None:
            raise NASRecError(f"--scratch-from {study}: has {len(by_index)} subnets, this study "
                              f"needs {len(architectures)}; finish that study first")
        if Architecture.from_dict(record["architecture"]) != architecture:
            raise NASRecError(f"--scratch-from {study}: subnet {index} differs from this "
                              "study's (another space or --seed)")
        if record.get("scratch_from"):
            raise NASRecError(f"--scratch-from {study}: that study reused another's from-scratch "
                              f"results; use {record['scratch_from']}")
        if settings is not None:
            refuse_other_settings(f"--scratch-from {study}: subnet {index}", architecture,
                                  data, subnet_dir(study, index), settings,
                                  "ask for that study's recipe, or train the subnets here",
                                  required=True)
        found.append({field: record[field] for field in SCRATCH_FIELDS
                      + tuple(name for name in OPTIONAL_SCRATCH_FIELDS if name in record)})
    return found


def run_rank_study(scorer: Any, space: SearchSpace, data: str, output: str, *,
                   num_subnets: int = 50, seed: int = 0,
                   scratch: Optional[ScratchTraining] = None,
                   scratch_from: Optional[str] = None, finetune: str = "head",
                   on_subnet: Optional[Callable[[dict[str, Any]], None]] = None
                   ) -> dict[str, Any]:
    """Score `num_subnets` random subnets from the supernet and from scratch; correlations.

    Args:
        scorer: a `SubnetScorer` of the supernet.
        space: the supernet's space.
        data: the prepared dataset (for the from-scratch runs).
        output: the study directory (`rank_study_subnets.jsonl`, `subnets/<k>/`).
        num_subnets: K.
        seed: seeds the subnets drawn.
        scratch: `ScratchTraining` settings.
        scratch_from: an earlier study's directory whose from-scratch results of the same
            subnets are reused (nothing is trained from scratch here); when `scratch` asks for
            a recipe (`ScratchTraining.asks_for_recipe`), that study's runs must have been
            trained with it.
        finetune: the "finetuned" scoring's fine-tune (`SubnetScorer.score`: "head" or
            "full"; "none" makes it the inherited one); a study continues only with the
            fine-tune it began with.
        on_subnet: called with each subnet's record.

    Returns:
        `{"subnets": [...], "finetuned": correlations, "inherited": correlations,
        "finetuned_auc": correlations, "inherited_auc": correlations}`, where "finetuned"
        compares the `finetune`-fine-tuned supernet log losses with from-scratch log losses,
        "inherited" the supernet's log losses without fine-tuning, and the `_auc` ones the
        same on the validation AUC.
    """
    from nasrec_torchrec.train.distributed import init_distributed, teardown
    from nasrec_torchrec.train.ranks import rank, spread_over_ranks, world_size

    scratch = scratch or ScratchTraining()
    if scratch_from and scratch.seeds > 1:
        raise NASRecError("--scratch-seeds trains the subnets from scratch; with --scratch-from "
                          "the seeds of that study's runs are used")
    os.makedirs(output, exist_ok=True)
    subnets_path = os.path.join(output, SUBNETS_FILE)
    architectures = sample_subnets(space, num_subnets, seed)
    done = _read_done(subnets_path)
    for record in done:
        index = record["index"]
        if index >= num_subnets or Architecture.from_dict(record["architecture"]) \
                != architectures[index]:
            raise NASRecError(f"{subnets_path}: subnet {index} is not this study's (another "
                              "seed or space); use another --output")
        if bool(record.get("scratch_from")) != bool(scratch_from):
            raise NASRecError(f"{subnets_path}: --scratch-from differs from the run that began "
                              "this study; rerun it the same way or use another --output")
        if record.get("finetune", "head") != finetune:
            raise NASRecError(f"{subnets_path}: subnet {index} was scored with --finetune "
                              f"{record.get('finetune', 'head')}, not {finetune}; rerun it "
                              "the same way or use another --output")
        if not scratch_from:
            seeds = len(record.get("scratch_seeds") or [None])
            if seeds != scratch.seeds:
                raise NASRecError(f"{subnets_path}: subnet {index} was trained from scratch "
                                  f"with {seeds} seed(s), not --scratch-seeds {scratch.seeds}; "
                                  "rerun it the same way or use another --output")
            for offset in range(scratch.seeds):
                refuse_other_settings(f"{subnets_path}: subnet {index}", architectures[index],
                                      data, subnet_dir(output, index, offset),
                                      seed_settings(scratch, offset),
                                      "continue it with those settings or use another "
                                      "--output")
    reused = read_scratch_results(
        scratch_from, architectures, scratch if scratch.asks_for_recipe else None, data) \
        if scratch_from else None
    records = list(done)
    remaining = range(len(done), num_subnets)
    study = _Study(scorer, architectures, data, output, scratch, scratch_from, reused, finetune)
    if world_size() > 1:
        new = spread_over_ranks(list(remaining), study.share)
        if rank() == 0:
            append_jsonl(subnets_path, new)
        for record in new:
            records.append(record)
            if on_subnet is not None:
                on_subnet(record)
    else:
        context = None if reused is not None else init_distributed("cpu", scratch.threads)
        try:
            for index in remaining:
                scores = study.scores(index)
                record = study.record(index, scores, study.scratch_fields(index, context))
                append_jsonl(subnets_path, [record])
                records.append(record)
                if on_subnet is not None:
                    on_subnet(record)
        finally:
            if context is not None:
                teardown(context)
    study_correlations = {
        f"{kind}{suffix}": correlations([r[f"supernet_{kind}_{metric}"] for r in records],
                                        [r[f"scratch_{metric}"] for r in records])
        for suffix, metric in (("", "log_loss"), ("_auc", "auc"))
        for kind in ("finetuned", "inherited")}
    for suffix, metric in (("", "log_loss"), ("_auc", "auc")):
        pairs = seed_pairs(records, metric)
        if pairs is not None:  # how well one from-scratch training ranks another
            study_correlations[f"reproducibility{suffix}"] = correlations(*pairs)
    return {"subnets": records, **study_correlations}


@dataclass
class _Study:
    """One study's subnets and how each is scored and trained (see `run_rank_study`)."""

    scorer: Any
    architectures: list[Architecture]
    data: str
    output: str
    scratch: ScratchTraining
    scratch_from: Optional[str]
    reused: Optional[list[dict[str, Any]]]
    finetune: str = "head"

    def seed_runs(self, index: int) -> list[tuple[str, ScratchTraining]]:
        """Subnet `index`'s from-scratch runs: (run directory, settings) per seed."""
        return [(subnet_dir(self.output, index, offset), seed_settings(self.scratch, offset))
                for offset in range(self.scratch.seeds)]

    def scratch_fields(self, index: int, context: Any) -> dict[str, Any]:
        """Subnet `index`'s from-scratch fields: reused, found finished, or trained here
        (with several seeds, their means and each seed's: `combine_seeds`)."""
        if self.reused is not None:
            return {**self.reused[index], "scratch_from": os.path.abspath(self.scratch_from)}
        architecture = self.architectures[index]
        runs, per_seed = self.seed_runs(index), []
        for run_dir, settings in runs:
            results = finished_scratch_run(architecture, self.data, run_dir, settings) \
                or train_from_scratch(architecture, self.data, run_dir, settings, context)
            per_seed.append(scratch_fields(results, self.scorer.config.eval_split))
        if len(per_seed) == 1:
            return per_seed[0]
        return combine_seeds(per_seed, [settings.run_seed for _, settings in runs])

    def scores(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Subnet `index` scored from the supernet: (fine-tuned by `finetune`, inherited)."""
        architecture = self.architectures[index]
        return (self.scorer.score(architecture, finetune=self.finetune),
                self.scorer.score(architecture, finetune="none"))

    def record(self, index: int, scores: tuple[dict[str, Any], dict[str, Any]],
               scratch_fields: dict[str, Any]) -> dict[str, Any]:
        """Subnet `index`'s line of the subnets file from its `scores` and from-scratch
        fields."""
        architecture = self.architectures[index]
        finetuned, inherited = scores
        return {
            "index": index, "finetune": self.finetune,
            "supernet_finetuned_log_loss": finetuned["log_loss"],
            "supernet_finetuned_auc": finetuned["auc"],
            "supernet_inherited_log_loss": inherited["log_loss"],
            "supernet_inherited_auc": inherited["auc"],
            **scratch_fields,
            "scoring_seconds": finetuned["seconds"] + inherited["seconds"],
            "mflops": finetuned["mflops"], "params": finetuned["params"],
            "architecture": architecture.to_dict(),
        }

    def share(self, indices: list[int]) -> list[dict[str, Any]]:
        """The records of one rank's share of the subnets: the subnets not trained yet are
        trained one after the other in a fresh one-rank process (`train.fresh_process`),
        as a lone process trains them."""
        from nasrec_torchrec.train.fresh_process import train_in_fresh_process

        scores = [self.scores(index) for index in indices]
        if self.reused is None:
            train_in_fresh_process([
                scratch_config(self.architectures[index], self.data, run_dir, settings)
                for index in indices for run_dir, settings in self.seed_runs(index)
                if finished_scratch_run(self.architectures[index], self.data, run_dir,
                                        settings) is None])
        return [self.record(index, scored, self.scratch_fields(index, None))
                for index, scored in zip(indices, scores)]
