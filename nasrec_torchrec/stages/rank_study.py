"""Stage `rank_study`: how well does the supernet rank subnets trained from scratch?

K random subnets (seeded) are scored from the supernet with and without the head fine-tune,
and each is trained from scratch (`search.rank_study`): a short fixed budget (`train_*`), or
the whole recipe of a `TrainConfig` JSON (`scratch_config`). Writes `rank_study.json`
(Pearson and Kendall of both scorings against the from-scratch validation log loss and AUC,
the from-scratch settings and, with several seeds per subnet, the from-scratch runs of two
seeds against each other), the subnets' records (`rank_study_subnets.jsonl`: a rerun
continues) and the scatter plots.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

from nasrec_torchrec.artifacts import read_json, write_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.search.settings import FINETUNE_MODES, ScoringRun
from nasrec_torchrec.settings import check, option
from nasrec_torchrec.train.config import TrainConfig

RANK_STUDY_FILE = "rank_study.json"


@dataclass
class RankStudyRun(ScoringRun):
    """A ranking study: the scoring of `ScoringRun`, then the subnets and their training."""

    num_subnets: int = option(50, "random subnets compared", minimum=3)
    finetune: str = option("head", "the fine-tune of the supernet's scores compared (the "
                           "inherited ones are always compared too): the final FC, every "
                           "dense weight of the subnet, or nothing", choices=FINETUNE_MODES)
    train_steps: int = option(1000, "from-scratch training steps per subnet", minimum=1)
    train_batch_size: Optional[int] = option(None, "from-scratch batch size (default: the "
                                             "supernet's)", minimum=1)
    train_lr: Optional[float] = option(None, "from-scratch Adagrad rate (default: the "
                                       "supernet's)", above=0.0)
    train_clip_grad_norm: Optional[float] = option(
        None, "from-scratch dense gradient clipping (default: the supernet's --clip-grad-norm; "
        "0: none)", minimum=0.0, metavar="NORM")
    scratch_from: Optional[str] = option(None, "reuse the from-scratch results of this earlier "
                                         "rank-study output (same space and --seed) instead "
                                         "of training the subnets", metavar="DIR")
    scratch_config: Optional[str] = option(
        None, "train each subnet from scratch with this recipe instead of --train-steps/"
        "--train-batch-size/--train-lr/--train-clip-grad-norm: a TrainConfig JSON as "
        "`nasrec train --config` reads (optimizer, rates, batch size, epochs, patience/"
        "monitor/plateau, table init, weight decays, clipping, cap or full tables, seed); "
        "the study sets the data, run directory, model, eval split and device",
        metavar="FILE.json", path=True)
    scratch_batch_norm: bool = option(False, "BatchNorm instead of LayerNorm on the dense "
                                      "operators of the subnets trained from scratch (as "
                                      "`final --batch-norm`)")
    scratch_dropout: float = option(0.0, "dropout on every block's dense output of the "
                                    "subnets trained from scratch (as `final --dropout`)",
                                    minimum=0.0, below=1.0, metavar="P")
    scratch_seeds: int = option(1, "train each subnet from scratch with N seeds (the seed, or "
                                "the recipe's, and the next ones; the others in repeat_<i>/): "
                                "the supernet is compared with their means, and the first two "
                                "seeds with each other ('reproducibility' in rank_study.json: "
                                "how well one from-scratch training ranks another, the ceiling "
                                "of any proxy)", minimum=1, metavar="N")

    def scratch_recipe(self) -> Optional[TrainConfig]:
        """The recipe of `scratch_config` (None without), checked; a fault is a `NASRecError`
        naming the file and the field."""
        if not self.scratch_config:
            return None
        path = self.scratch_config
        for name in ("train_batch_size", "train_lr", "train_clip_grad_norm"):
            if getattr(self, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise NASRecError(f"{flag} is the fixed budget's; with --scratch-config {path} "
                                  "the recipe sets it")
        recipe = TrainConfig.load(path)
        recipe.eval_split = self.eval_split
        check(recipe, path, with_flags=False)
        dataclasses.replace(recipe, output=self.output or "-").validate(1, path)
        return recipe


def rank_study(run: RankStudyRun, source: str = "rank-study") -> dict[str, Any]:
    """Run (or continue) the study of `run`; the content of `rank_study.json`.

    Under torchrun the subnets are spread over the ranks (`search.rank_study`); rank 0 writes
    the files.
    """
    from nasrec_torchrec.train.ranks import job_group

    run.validate(source)
    recipe = run.scratch_recipe()
    with job_group(run.threads):
        return _study(run, recipe)


def _study(run: RankStudyRun, recipe: Optional[TrainConfig]) -> dict[str, Any]:
    from nasrec_torchrec.search.rank_study import run_rank_study
    from nasrec_torchrec.search.scratch import ScratchTraining
    from nasrec_torchrec.search.run import load_scorer
    from nasrec_torchrec.train.ranks import on_main_rank, rank

    started = time.perf_counter()
    loaded, scorer = load_scorer(run, run.finetune)
    supernet_config = loaded.config
    scratch = ScratchTraining(
        steps=run.train_steps,
        batch_size=run.train_batch_size or int(supernet_config.get("batch_size", 256)),
        learning_rate=run.train_lr or float(supernet_config.get("learning_rate", 0.04)),
        embedding_cap=loaded.embedding_cap, layer_norm=loaded.supernet.layer_norm,
        clip_grad_norm=_scratch_clip(run.train_clip_grad_norm,
                                     supernet_config.get("clip_grad_norm")),
        seed=run.seed, eval_batch_size=run.eval_batch_size, threads=run.threads,
        recipe=recipe, batch_norm=run.scratch_batch_norm, dropout=run.scratch_dropout,
        seeds=run.scratch_seeds)
    progress = None
    if run.progress and rank() == 0:
        from tqdm import tqdm

        progress = tqdm(total=run.num_subnets, unit="subnet", desc="rank study",
                        dynamic_ncols=True)
    try:
        study = run_rank_study(
            scorer, loaded.supernet.space, loaded.data, run.output,
            num_subnets=run.num_subnets, seed=run.seed, scratch=scratch,
            scratch_from=run.scratch_from, finetune=run.finetune,
            on_subnet=(lambda _: progress.update(1)) if progress is not None else None)
    finally:
        if progress is not None:
            progress.close()
    return on_main_rank(lambda: _write_study(run, loaded, scorer, scratch, study, started))


def _write_study(run: RankStudyRun, loaded: Any, scorer: Any, scratch: Any,
                 study: dict[str, Any], started: float) -> dict[str, Any]:
    """The plots and `rank_study.json` of a finished study; the summary written."""
    from nasrec_torchrec.analysis.plots import plot_rank_correlation

    supernet_config = loaded.config
    records = study["subnets"]
    scratch_losses = [r["scratch_log_loss"] for r in records]
    for kind, name in (("finetuned", "rank_study.png"), ("inherited", "rank_study_inherited.png")):
        plot_rank_correlation(
            [r[f"supernet_{kind}_log_loss"] for r in records], scratch_losses,
            os.path.join(run.output, name), study[kind]["pearson"], study[kind]["kendall"],
            xlabel=f"supernet log loss ({_scoring_label(run.finetune, kind)})",
            title=f"Ranking study, {loaded.supernet.space.name}, {len(records)} subnets")
    summary = {
        "config": asdict(run),
        "scoring": scorer.config.to_dict(),
        "scratch_training": _scratch_settings(run.scratch_from) if run.scratch_from
        else scratch.to_dict(),
        "scratch_from": os.path.abspath(run.scratch_from) if run.scratch_from else None,
        "supernet": {"run_dir": loaded.run_dir, "checkpoint": loaded.checkpoint,
                     "step": loaded.step, "space": loaded.supernet.space.name,
                     "strategy": (supernet_config.get("model") or {}).get("strategy")},
        "finetuned": study["finetuned"], "inherited": study["inherited"],
        "finetuned_auc": study["finetuned_auc"], "inherited_auc": study["inherited_auc"],
        **{key: study[key] for key in ("reproducibility", "reproducibility_auc")
           if key in study},
        "num_subnets": len(records), "seconds_this_run": time.perf_counter() - started,
        "subnets_file": "rank_study_subnets.jsonl",
    }
    write_json(os.path.join(run.output, RANK_STUDY_FILE), summary)
    return summary


def _scoring_label(finetune: str, kind: str) -> str:
    """How the supernet scored the subnets of column `kind` ("finetuned" or "inherited")."""
    return f"{finetune} fine-tuned" if kind == "finetuned" else "inherited"


def _scratch_settings(study: str) -> Any:
    """The from-scratch settings recorded by the study whose results are reused."""
    path = os.path.join(study, RANK_STUDY_FILE)
    if not os.path.exists(path):
        return None
    return read_json(path).get("scratch_training")


def _scratch_clip(flag: Optional[float], supernet_clip: Optional[float]) -> Optional[float]:
    """The from-scratch clipping norm: the flag (0: none), else the supernet's."""
    return supernet_clip if flag is None else flag or None
