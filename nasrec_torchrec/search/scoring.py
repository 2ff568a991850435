"""Scoring subnets of one loaded supernet: inherit, fine-tune the final FC, evaluate.

The supernet (embedding tables + body) is loaded once, in this process, from the checkpoint
directory `nasrec train-supernet` wrote (`loading.load_supernet`). Scoring a candidate never changes
it: `NASRecNet.from_supernet` copies the candidate's slices (blocks and final FC) into a
standalone subnet, and only that copy is fine-tuned.

The embeddings are frozen during scoring, so the dense features and pooled embeddings of the
fine-tuning batches and of the validation split are read, looked up and kept once
(`scoring_rows`, within `cache_limit_mb`): every candidate then trains on exactly the same
batches and is evaluated on exactly the same rows. With `finetune="head"` (the paper's
post-training fine-tuning) only the head `[last dense | flattened last sparse] -> 1` trains:
Adagrad (lr 0.04), cosine schedule, 500 steps of 256 rows by default; with `optimizer` "adam"
(the search's default when the supernet trained with Adam) torch Adam's steps instead. The
frozen body does not
depend on the head, so it runs without autograd on chunks of `body_batch_size` rows (whole
fine-tuning batches, in step order) and the head then steps batch by batch on its outputs:
the same steps as a batch-by-batch fine-tune, at a fraction of the per-call overhead.

A supernet with BatchNorm (`train-supernet --batch-norm`) shares its running statistics
between all paths, so they are no subnet's: the materialised subnet's are re-estimated
(`recalibrate_batch_norm`) on the first `recalibration_batches` fine-tuning batches, the same
for every candidate, before the fine-tune (a head fine-tune then runs the body in eval mode on
them: its features are frozen) and, after a full fine-tune, again before the evaluation.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from nasrec_torchrec.analysis.flops import ModelCost
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.batch_norm import recalibrate_batch_norm
from nasrec_torchrec.nn.model import NASRecModel
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.nn.precision import PRECISIONS, body_autocast
from nasrec_torchrec.search.cost import subnet_cost
from nasrec_torchrec.search.head_finetune import HeadFinetune, single_thread
from nasrec_torchrec.search.scoring_rows import Inputs, ScoringRows, bytes_per_row, rechunk
from nasrec_torchrec.search.settings import FINETUNE_MODES, ScoringRun, SearchRun
from nasrec_torchrec.space.architecture import Architecture
from nasrec_torchrec.train.config import OPTIMIZER_CHOICES, TrainConfig
from nasrec_torchrec.train.schedules import LR_SCHEDULES, step_rates

logger = logging.getLogger(__name__)


@dataclass
class ScoringConfig:
    """How a candidate is scored.

    Args:
        finetune: "head" (fine-tune the final FC only, the paper's default), "none" (score
            the inherited subnet as it is) or "full" (fine-tune every dense weight of the
            subnet; embeddings stay frozen).
        finetune_steps: fine-tuning steps.
        batch_size: rows per fine-tuning step.
        learning_rate: the fine-tuning rate (cosine schedule to 0 over the steps).
        eps: the optimizer's epsilon.
        lr_schedule: "cosine" or "constant".
        seed: seeds the order of the fine-tuning rows (the same batches for every candidate).
        train_split: the split fine-tuned on.
        eval_split: the split scored (every row of it).
        eval_batch_size: rows per evaluation forward.
        eval_rows: score only the first N rows of the split (None: all).
        body_batch_size: rows per forward of the frozen body in a head fine-tune (rounded
            down to whole fine-tuning batches); the head then steps batch by batch.
        cache_inputs: keep the dense features, pooled embeddings and labels of the
            fine-tuning and evaluation rows in memory (read and looked up once for all
            candidates).
        cache_limit_mb: a split whose rows would take more memory than this (1.7 kB a row
            for 13 dense and 26 sparse features at E = 16) is not cached but read and looked
            up again for every candidate.
        optimizer: the fine-tuning's optimizer, "adagrad" or "adam" (torch's, or the same
            steps in closed form for the head).
        betas: Adam's (beta1, beta2).
        precision: the body's forwards, "fp32" or "bf16" (autocast; the supernet run's).
        recalibration_batches: with a BatchNorm supernet, the fine-tuning batches (the
            first N) each subnet's BatchNorm statistics are re-estimated on.
    """

    finetune: str = SearchRun.finetune
    finetune_steps: int = ScoringRun.finetune_steps
    batch_size: int = ScoringRun.finetune_batch_size
    learning_rate: float = ScoringRun.finetune_lr
    eps: float = 1e-8
    lr_schedule: str = "cosine"
    seed: int = ScoringRun.seed
    train_split: str = "train"
    eval_split: str = ScoringRun.eval_split
    eval_batch_size: int = ScoringRun.eval_batch_size
    eval_rows: Optional[int] = ScoringRun.eval_rows
    body_batch_size: int = 2048
    cache_inputs: bool = True
    cache_limit_mb: float = 4096.0
    optimizer: str = "adagrad"
    betas: tuple[float, float] = TrainConfig.betas
    precision: str = TrainConfig.precision
    recalibration_batches: int = ScoringRun.recalibration_batches

    def validate(self) -> None:
        """Raise `NASRecError` naming the field at fault."""
        if self.finetune not in FINETUNE_MODES:
            raise NASRecError(f"scoring: field 'finetune': {self.finetune!r} is not one of "
                              f"{list(FINETUNE_MODES)}")
        if self.precision not in PRECISIONS:
            raise NASRecError(f"scoring: field 'precision': {self.precision!r} is not one of "
                              f"{list(PRECISIONS)}")
        if self.optimizer not in OPTIMIZER_CHOICES:
            raise NASRecError(f"scoring: field 'optimizer': {self.optimizer!r} is not one of "
                              f"{list(OPTIMIZER_CHOICES)}")
        for name in ("batch_size", "eval_batch_size", "body_batch_size",
                     "recalibration_batches"):
            if getattr(self, name) < 1:
                raise NASRecError(f"scoring: field '{name}': must be at least 1")
        if self.cache_limit_mb < 0:
            raise NASRecError("scoring: field 'cache_limit_mb': must be >= 0")
        if self.finetune_steps < 0:
            raise NASRecError("scoring: field 'finetune_steps': must be >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise NASRecError(f"scoring: field 'lr_schedule': {self.lr_schedule!r} is not one "
                              f"of {', '.join(LR_SCHEDULES)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def head_input(net: NASRecNet, dense: torch.Tensor, sparse: torch.Tensor,
               precision: str = "fp32") -> tuple[torch.Tensor, int, Any]:
    """The final FC's arguments `(features [B, H] fp32, 1, column ranges)` of `net` on a
    batch: the frozen body's output in `precision`, computed without autograd."""
    captured: list[tuple[Any, ...]] = []
    hook = net.head.register_forward_pre_hook(lambda _, args: captured.append(args))
    try:
        with torch.no_grad(), body_autocast(precision, dense.device.type):
            net(dense, sparse)
    finally:
        hook.remove()
    features, out, ranges = captured[0]
    return features.float(), out, ranges


class SubnetScorer:
    """Scores architectures from one supernet: inherit, fine-tune, evaluate.

    The scoring rows are read and embedded once (`prepare`, or the first `score`) and kept in
    memory within `config.cache_limit_mb`; see `scoring_rows`.

    Args:
        model: a `NASRecModel` whose body is a `Supernet` (its weights are never changed).
        data: the prepared dataset directory.
        embedding_cap: the cap of `model`'s tables (ids are mapped to rows with it).
        config: a `ScoringConfig`.

    Example::

        loaded = load_supernet("runs/supernet")  # search/loading.py
        scorer = SubnetScorer(loaded.model, loaded.data, loaded.embedding_cap)
        result = scorer.score(architecture)  # {"log_loss", "auc", "mflops", "params", ...}
    """

    def __init__(self, model: NASRecModel, data: str, embedding_cap: Optional[int],
                 config: Optional[ScoringConfig] = None) -> None:
        self.config = config or ScoringConfig()
        self.config.validate()
        if not isinstance(model.body, Supernet):
            raise NASRecError("SubnetScorer: the model's body is not a Supernet")
        self.model = model
        self.supernet: Supernet = model.body
        self.data = data
        self.embedding_cap = embedding_cap
        self._cached: dict[str, Optional[ScoringRows]] = {}
        self._costs: dict[Architecture, ModelCost] = {}
        # seconds of the last fine-tune's frozen-body forwards (head mode), for benchmarks
        self.body_seconds: float = 0.0

    # --- inputs ------------------------------------------------------------------------------

    @torch.no_grad()
    def _embed(self, batch: Any) -> Inputs:
        sparse = self.model.embed(batch.sparse_features)
        return batch.dense_features, sparse, batch.labels.float()

    def _loader(self, split: str) -> Any:
        from nasrec_torchrec.data.loader import ParquetBatchLoader

        config = self.config
        if split == "train":
            return ParquetBatchLoader(self.data, config.train_split, config.batch_size,
                                      embedding_cap=self.embedding_cap, shuffle=True,
                                      seed=config.seed, drop_last=True, prefetch=0)
        return ParquetBatchLoader(self.data, config.eval_split, config.eval_batch_size,
                                  embedding_cap=self.embedding_cap, shuffle=False,
                                  drop_last=False, prefetch=0)

    def _train_batches(self) -> Iterator[Inputs]:
        """The fine-tuning batches: the first `finetune_steps` full batches of the seeded,
        shuffled training order (further epochs when one is too short)."""
        config = self.config
        if config.finetune_steps == 0:
            return
        loader = self._loader("train")
        if len(loader) < 1:
            raise NASRecError(f"{self.data}: split '{config.train_split}' has no full batch of "
                              f"{config.batch_size} rows")
        produced, epoch = 0, 0
        while True:
            loader.set_epoch(epoch)
            for batch in loader:
                yield self._embed(batch)
                produced += 1
                if produced == config.finetune_steps:
                    return
            epoch += 1

    def _eval_batches(self) -> Iterator[Inputs]:
        remaining = self.config.eval_rows
        for batch in self._loader("eval"):
            dense, sparse, labels = self._embed(batch)
            if remaining is not None:
                if remaining <= 0:
                    return
                dense, sparse, labels = dense[:remaining], sparse[:remaining], labels[:remaining]
                remaining -= len(labels)
            yield dense, sparse, labels

    def _planned_rows(self, split: str) -> int:
        """Rows the split contributes to scoring (without reading them)."""
        config = self.config
        if split == "train":
            return config.finetune_steps * config.batch_size
        rows = self._loader("eval").num_rows
        return rows if config.eval_rows is None else min(rows, config.eval_rows)

    def _rows(self, split: str) -> Optional[ScoringRows]:
        """The cached rows of `split` ("train" or "eval"), or None when they are streamed."""
        if split in self._cached:
            return self._cached[split]
        rows: Optional[ScoringRows] = None
        supernet = self.supernet
        size = self._planned_rows(split) * bytes_per_row(
            supernet.dense_in_features, supernet.num_sparse_features, supernet.embedding_dim)
        if self.config.cache_inputs and size > self.config.cache_limit_mb * 2**20:
            logger.warning("scoring: the %s rows would take %.0f MB (> cache_limit_mb %s): "
                           "streamed and looked up again for every candidate", split,
                           size / 2**20, self.config.cache_limit_mb)
        elif self.config.cache_inputs:
            batches = self._train_batches() if split == "train" else self._eval_batches()
            rows = ScoringRows.gather(batches)
            logger.info("scoring: cached %d %s rows (%.0f MB)", len(rows), split,
                        rows.nbytes / 2**20)
        self._cached[split] = rows
        return rows

    def prepare(self) -> dict[str, int]:
        """Read and embed the scoring rows now (else the first candidate does); row counts."""
        return {"train_rows": sum(len(c[2]) for c in self.train_chunks(self._train_chunk())),
                "eval_rows": sum(len(c[2]) for c in self.eval_chunks())}

    def train_chunks(self, rows: int) -> Iterator[Inputs]:
        """The fine-tuning rows in step order, in chunks of `rows` (a multiple of the batch)."""
        cached = self._rows("train")
        if cached is not None:
            return cached.chunks(rows)
        return rechunk(self._train_batches(), rows)

    def eval_chunks(self) -> Iterator[Inputs]:
        """The evaluation rows in chunks of `eval_batch_size`."""
        cached = self._rows("eval")
        chunks = (cached.chunks(self.config.eval_batch_size) if cached is not None
                  else self._eval_batches())
        empty = True
        for chunk in chunks:
            empty = False
            yield chunk
        if empty:
            raise NASRecError(f"{self.data}: split '{self.config.eval_split}' is empty")

    def _train_chunk(self) -> int:
        """Rows of the frozen body's forward in a head fine-tune: whole batches."""
        batch = self.config.batch_size
        return batch * max(1, self.config.body_batch_size // batch)

    # --- scoring -----------------------------------------------------------------------------

    def subnet(self, architecture: Architecture) -> NASRecNet:
        """The standalone subnet of `architecture` with the supernet's (copied) weights."""
        with torch.random.fork_rng():  # building modules draws initial weights we overwrite
            net = NASRecNet.from_supernet(self.supernet, architecture)
        net.train()
        return net

    def recalibrate(self, net: NASRecNet) -> None:
        """Re-estimate the BatchNorm statistics of `net` (a subnet of a BatchNorm supernet)
        on the first `recalibration_batches` fine-tuning batches; `net` is left in eval mode."""
        config = self.config
        chunks = itertools.islice(self.train_chunks(config.batch_size),
                                  config.recalibration_batches)
        with body_autocast(config.precision, self.supernet.head.weight.device.type):
            count = recalibrate_batch_norm(net, ((dense, sparse) for dense, sparse, _ in chunks))
        if count == 0:
            raise NASRecError("scoring: re-estimating the BatchNorm statistics of a subnet "
                              "needs fine-tuning rows (--finetune-steps must be > 0)")

    def finetune(self, net: NASRecNet, mode: Optional[str] = None) -> list[float]:
        """Fine-tune `net` in place (`mode` "head", "full" or "none"); the per-step losses."""
        from nasrec_torchrec.train.schedules import LRSchedule

        config = self.config
        mode = mode or config.finetune
        if mode not in FINETUNE_MODES:
            raise NASRecError(f"finetune: {mode!r} is not one of {list(FINETUNE_MODES)}")
        if mode == "none" or config.finetune_steps == 0:
            return []
        if mode == "head":
            return self._finetune_head(net)
        trainable = list(net.parameters())
        for parameter in trainable:
            parameter.requires_grad_(True)
        if config.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(
                trainable, lr=config.learning_rate, betas=config.betas, eps=config.eps)
        else:
            optimizer = torch.optim.Adagrad(trainable, lr=config.learning_rate, eps=config.eps)
        schedule = LRSchedule(optimizer, config.finetune_steps, schedule=config.lr_schedule)
        losses = []
        try:
            for dense, sparse, labels in self.train_chunks(config.batch_size):
                optimizer.zero_grad(set_to_none=True)
                with body_autocast(config.precision, dense.device.type):
                    logits = net(dense, sparse)
                loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
        finally:
            for parameter in trainable:
                parameter.requires_grad_(False)
        return losses

    def _finetune_head(self, net: NASRecNet) -> list[float]:
        """The head fine-tune: the frozen body on chunks of whole batches, then the head's
        Adagrad or Adam steps batch by batch on the body's outputs (`HeadFinetune`)."""
        config = self.config
        rates = step_rates(config.lr_schedule, config.learning_rate, config.finetune_steps)
        trainer: Optional[HeadFinetune] = None
        batch = config.batch_size
        self.body_seconds = 0.0
        for dense, sparse, labels in self.train_chunks(self._train_chunk()):
            mark = time.perf_counter()
            features, _, ranges = head_input(net, dense, sparse, config.precision)
            self.body_seconds += time.perf_counter() - mark
            if trainer is None:
                trainer = HeadFinetune(net.head, ranges, rates, config.eps, config.optimizer,
                                       config.betas)
            with single_thread():
                for start in range(0, len(labels), batch):
                    trainer.step(features[start:start + batch], labels[start:start + batch])
        return trainer.finish() if trainer is not None else []

    @torch.no_grad()
    def evaluate(self, net: nn.Module) -> dict[str, float]:
        """Log loss and AUC of `net(dense, sparse)` over every row of the evaluation split."""
        from nasrec_torchrec.train.metrics import binary_metrics

        logits, labels = [], []
        for dense, sparse, batch_labels in self.eval_chunks():
            with body_autocast(self.config.precision, dense.device.type):
                logits.append(net(dense, sparse).float())
            labels.append(batch_labels)
        return binary_metrics(torch.cat(logits), torch.cat(labels))

    def cost(self, architecture: Architecture, net: Optional[NASRecNet] = None) -> ModelCost:
        """`ModelCost` (fvcore FLOPs per sample, dense params) of `architecture`, counted on
        `net` (its built subnet, else one built here); cached by canonical architecture."""
        key = architecture.canonical()
        cost = self._costs.get(key)
        if cost is None:
            if net is None:
                with torch.random.fork_rng():
                    net = NASRecNet(architecture, self.supernet.dense_in_features,
                                    self.supernet.num_sparse_features,
                                    self.supernet.embedding_dim, self.supernet.layer_norm,
                                    batch_norm=self.supernet.batch_norm).eval()
            cost = subnet_cost(net)
            if len(self._costs) >= 65536:
                self._costs.clear()
            self._costs[key] = cost
        return cost

    def score(self, architecture: Architecture, finetune: Optional[str] = None) -> dict[str, Any]:
        """Score one candidate.

        Returns:
            `{"log_loss", "auc", "rows", "positive_rate", "finetune", "finetune_steps",
            "finetune_loss" (mean of the last 10% of steps), "mflops", "params", "seconds"}`.
        """
        start = time.perf_counter()
        mode = finetune or self.config.finetune
        net = self.subnet(architecture)
        batch_norm = self.supernet.batch_norm
        if batch_norm:
            self.recalibrate(net)  # eval mode: a head fine-tune's features use these
            if mode == "full":
                net.train()
        losses = self.finetune(net, mode)
        if batch_norm and mode == "full" and losses:
            self.recalibrate(net)
        net.eval()
        metrics = self.evaluate(net)
        cost = self.cost(architecture, net)
        tail = losses[-max(1, len(losses) // 10):] if losses else []
        return {
            **metrics,
            "finetune": mode,
            "finetune_steps": len(losses),
            "finetune_loss": sum(tail) / len(tail) if tail else None,
            "mflops": cost.mflops,
            "params": cost.params,
            "seconds": time.perf_counter() - start,
        }
