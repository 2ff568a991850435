"""One trainer for supernets, fixed architectures and baselines, on TorchRec.

The caller gives a body (`Supernet`, `NASRecNet`, a baseline: any module
`body(dense [B, Dn], sparse [B, F, E]) -> logits [B]`) and the loaders; the trainer owns the
embedding tables (from the loader's schema, sharded by `DistributedModelParallel` with the
fused Adagrad), the optimizers and LR schedule, TorchRec's train pipeline, checkpoints,
`metrics.jsonl`, `config.json` and `results.json`.

Supernet training: with a `path_sampler`, every step first draws a path
(`path_sampler.next_path(step)`, seeded identically on every rank) and sets it with
`body.set_architecture(path)`. The supernet records the gradients of the weight slices the
path used (`nn.elastic.SliceGradients`); `SlicedAdagrad` averages them over the ranks and
updates those slices only, so DDP leaves the supernet's parameters alone.

Optimizers: `config.optimizer` "adagrad" (default, the paper's) or "adam" (see
`nasrec_torchrec.train.optimizers`). Regularisation: `config.embedding_l2` adds
`embedding_l2 * mean_b sum_{f,e} e_{b,f,e}^2` over the pooled embeddings the body receives to
the training loss (its gradient flows back through the sharded lookup, so it works with the
fused optimizers and any sharding; like the BCE it is a mean over each rank's rows). The
logged train loss is the BCE alone.

Early stopping: with `config.patience`, `eval_split` is evaluated after every epoch
(`train.early_stopping`); the run stops after `patience` epochs without improvement of
`config.monitor`, the best epoch's checkpoint is loaded and kept (the others deleted), and
`results.json` reports its metrics with every epoch's record (`early_stopping`).

Resuming: a checkpoint holds the sharded model, both optimizers, the LR schedule, the path
sampler's state, torch's RNG state and the step (the data position is the step: the train
loader yields the same number of batches in every epoch). `resume=True` continues from the
latest one, so a killed and resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torchrec.datasets.utils import Batch
from torchrec.distributed.planner.types import ParameterConstraints
from torchrec.distributed.train_pipeline import TrainPipelineBase, TrainPipelineSparseDist

from nasrec_torchrec.embeddings import (
    build_embedding_bag_collection, embedding_table_names, fill_embedding_tables,
    init_embedding_weights, manual_plan, shard_model)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.train.checkpoint import (
    latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint)
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.distributed import DistributedContext, barrier
from nasrec_torchrec.train.early_stopping import EarlyStop, EarlyStopping
from nasrec_torchrec.train.metrics import evaluate
from nasrec_torchrec.train.optimizers import (
    attach_fused_adam, build_optimizer)
from nasrec_torchrec.train.schedules import LRSchedule

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
EARLY_STOPPING_FILE = "early_stopping.json"


class _PipelineTrain(NASRecModelTrain):
    """`NASRecModelTrain` with the plain `forward(batch)` that TorchRec's pipelines trace.

    `TrainPipelineSparseDist` FX-traces the model's forward, and FX cannot trace the
    `*body_args` of `NASRecModelTrain.forward`. Same attributes, so the same state-dict keys.
    With `embedding_l2 > 0` the returned loss (the one back-propagated) adds
    `embedding_l2 * mean_b sum_{f,e} sparse[b, f, e]^2`; the outputs keep the BCE alone.
    """

    def __init__(self, model: NASRecModel, embedding_l2: float = 0.0) -> None:
        super().__init__(model)
        self.embedding_l2: float = embedding_l2

    def forward(self, batch: Batch  # type: ignore[override]
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        if not self.embedding_l2:
            return super().forward(batch)
        sparse = self.model.embed(batch.sparse_features)
        logits = self.model.body(batch.dense_features, sparse)
        labels = batch.labels.float()
        loss = self.loss_fn(logits, labels)
        penalty = sparse.pow(2).sum(dim=(1, 2)).mean()
        return loss + self.embedding_l2 * penalty, (loss.detach(), logits.detach(), labels)


def planned_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of a run: `epochs` passes of `steps_per_epoch`, at most `max_steps`."""
    total = steps_per_epoch * config.epochs
    return min(total, config.max_steps) if config.max_steps else total


def init_embedding_normal(dmp: nn.Module, seed: int, std: float) -> None:
    """Draw every table from N(0, std^2) (FuxiCTR's initialiser), the same for any sharding:
    a table's values come from a generator seeded by (seed, table name)."""
    state = dmp.state_dict()
    shapes = {name: tuple(state[key].size()) for key, name in embedding_table_names(dmp).items()}
    cache: dict[str, torch.Tensor] = {}

    def fill(name: str, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        if name not in cache:
            digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=7).digest()
            generator = torch.Generator().manual_seed(int.from_bytes(digest, "little"))
            cache[name] = torch.randn(shapes[name], generator=generator) * std
        return cache[name][rows[0]:rows[1], cols[0]:cols[1]]

    fill_embedding_tables(dmp, fill)


def _path_digest(path: Any) -> int:
    return int.from_bytes(hashlib.blake2b(repr(path).encode(), digest_size=7).digest(), "little")


class Trainer:
    """Trains `body` under sharded embeddings; `fit()` runs, evaluates and writes results.

    Args:
        config: the run's settings (`TrainConfig`).
        context: from `init_distributed` (rank, world size, device).
        body: `body(dense, sparse) -> logits`, built after `torch.manual_seed(config.seed)`
            (DDP also broadcasts rank 0's dense weights).
        train_loader: this rank's training batches, with `schema`, `__len__` (the same every
            epoch and on every rank), `set_epoch(e)` and `start_at(batch_index)`.
        eval_loader: this rank's batches of the evaluation split (or None).
        path_sampler: supernet training: `next_path(step)`, `state_dict()`,
            `load_state_dict()`; the body must have `set_architecture(path)`.
        eval_architecture: the supernet path evaluated at the end.
        callbacks: called as `callback(trainer)` after every step (after any checkpoint).

    Example::

        context = init_distributed("auto")
        torch.manual_seed(config.seed)
        body = NASRecNet(architecture, len(schema.dense), len(schema.sparse))
        train, val = make_loaders(config, context)
        results = Trainer(config, context, body, train, val).fit()
    """

    def __init__(self, config: TrainConfig, context: DistributedContext, body: nn.Module,
                 train_loader: Any, eval_loader: Any = None, *,
                 path_sampler: Any = None, eval_architecture: Any = None,
                 callbacks: Sequence[Callable[["Trainer"], None]] = ()) -> None:
        config.validate(context.world_size)
        if path_sampler is not None and not hasattr(body, "set_architecture"):
            raise NASRecError("supernet training needs a body with set_architecture(path)")
        if path_sampler is not None and config.optimizer != "adagrad":
            raise NASRecError(f"supernet training: optimizer '{config.optimizer}' is not "
                              "supported (the body's SlicedAdagrad is Adagrad); use adagrad")
        if config.optimizer == "adam" and context.device.type != "cuda" \
                and config.sharding_type:
            raise NASRecError(f"--optimizer adam on CPU keeps the tables data-parallel (FBGEMM "
                              f"has no CPU Adam): --sharding-type {config.sharding_type} "
                              "cannot apply")
        self.config = config
        self.context = context
        self.body = body
        self.train_loader = train_loader
        self.eval_loader = eval_loader
        self.path_sampler = path_sampler
        self.eval_architecture = eval_architecture
        self.callbacks = list(callbacks)
        self.schema = train_loader.schema
        self.steps_per_epoch: int = len(train_loader)
        if self.steps_per_epoch < 1:
            raise NASRecError(f"{config.data}: the training split has no full batch of "
                              f"{config.batch_size} rows")
        self.total_steps: int = planned_steps(config, self.steps_per_epoch)
        self.step: int = 0
        self.last_loss: float = float("nan")
        self._samples_before: int = 0
        self._seconds_before: float = 0.0

        # A supernet step uses slices of its weights: record and update those slices only,
        # averaged over ranks by the optimizer instead of a full-size DDP all-reduce.
        self.slice_gradients: Optional[SliceGradients] = None
        if path_sampler is not None:
            self.slice_gradients = SliceGradients()
            attach_slice_gradients(body, self.slice_gradients)
        self.dmp = self._build_model()
        self.optimizer = build_optimizer(
            self.dmp, config.learning_rate, config.eps, self.slice_gradients,
            optimizer=config.optimizer, betas=tuple(config.betas),  # type: ignore[arg-type]
            table_learning_rate=config.embedding_learning_rate,
            table_weight_decay=config.embedding_weight_decay,
            max_grad_norm=config.clip_grad_norm)
        self.schedule = LRSchedule(self.optimizer, self.total_steps, config.lr_warmup_fraction,
                                   schedule=config.lr_schedule)
        self.checkpoint_dir = os.path.join(config.output, CHECKPOINT_DIR)

    # --- setup ---------------------------------------------------------------------------

    def _build_model(self) -> nn.Module:
        config = self.config
        ebc = build_embedding_bag_collection(self.schema, config.embedding_dim,
                                             config.embedding_cap)
        model = _PipelineTrain(NASRecModel(ebc, len(self.schema.dense), self.body),
                               config.embedding_l2)
        constraints, plan = None, None
        if config.optimizer == "adam" and self.context.device.type == "cuda":
            attach_fused_adam(model, config.embedding_learning_rate, config.eps,
                              tuple(config.betas),  # type: ignore[arg-type]
                              config.embedding_weight_decay)
        if config.optimizer == "adam" and self.context.device.type != "cuda":
            # FBGEMM has no CPU Adam: replicated tables, dense kernel, torch Adam
            constraints = {f"t_{name}": ParameterConstraints(
                sharding_types=["data_parallel"], compute_kernels=["dense"])
                for name in self.schema.sparse_names}
        elif config.sharding_type == "row_wise":
            # the planner never proposes row_wise on CPU: a hand-written plan
            plan = manual_plan(model, "row_wise", self.context.world_size, self.context.device)
        elif config.sharding_type:
            constraints = {f"t_{name}": ParameterConstraints(
                sharding_types=[config.sharding_type], compute_kernels=["fused"])
                for name in self.schema.sparse_names}
        dmp = shard_model(
            model, self.context.device, learning_rate=config.embedding_learning_rate,
            eps=config.eps, memory_budget_bytes=config.memory_budget_bytes,
            constraints=constraints, plan=plan,
            batch_size=config.batch_size // self.context.world_size,
            dense_params_to_ignore=self._self_synchronised_params(),
        )
        if self.slice_gradients is not None and self.context.world_size > 1:
            for parameter in self.body.parameters():  # what DDP would have broadcast
                dist.broadcast(parameter.data, src=0)
        if config.embedding_init_std is None:
            init_embedding_weights(dmp, config.seed)
        else:
            init_embedding_normal(dmp, config.seed, config.embedding_init_std)
        return dmp

    def _self_synchronised_params(self) -> list[str]:
        """Names (in the train model) of the body parameters DDP must leave alone."""
        if self.slice_gradients is None:
            return []
        return [f"model.body.{name}" for name, _ in self.body.named_parameters()]

    def _pipeline(self) -> TrainPipelineBase:
        kind = self.config.pipeline
        if kind == "auto":
            kind = "sparse_dist" if self.context.device.type == "cuda" else "base"
        if kind == "sparse_dist":
            return TrainPipelineSparseDist(self.dmp, self.optimizer, self.context.device)
        return TrainPipelineBase(self.dmp, self.optimizer, self.context.device)

    def _batches(self) -> Iterator[Batch]:
        """Training batches from the current step on, across epochs."""
        start = self.step
        while start < self.total_steps:
            epoch, index = divmod(start, self.steps_per_epoch)
            self.train_loader.set_epoch(epoch)
            self.train_loader.start_at(index)
            for batch in self.train_loader:
                yield batch
                start += 1
            if start % self.steps_per_epoch:
                raise NASRecError(f"epoch {epoch}: the train loader ended after "
                                  f"{start % self.steps_per_epoch} of {self.steps_per_epoch} "
                                  "batches")

    # --- state -----------------------------------------------------------------------------

    def run_state(self) -> dict[str, Any]:
        """The JSON-able state a checkpoint keeps beside the tensors."""
        epoch, batch_index = divmod(self.step, self.steps_per_epoch)
        return {
            "step": self.step, "epoch": epoch, "batch_index": batch_index,
            "steps_per_epoch": self.steps_per_epoch, "total_steps": self.total_steps,
            "schedule": self.schedule.state_dict(),
            "path_sampler": self.path_sampler.state_dict() if self.path_sampler else None,
            "torch_rng": torch.get_rng_state().tolist(),
            "samples": self._samples_before, "train_seconds": self._seconds_before,
            "config": self.config.to_dict(),
        }

    def save(self) -> str:
        """Checkpoint the current step (a collective)."""
        return save_checkpoint(self.checkpoint_dir, self.step, self.dmp, self.optimizer,
                               self.run_state(), keep_last=self.config.keep_checkpoints)

    def resume(self, path: str) -> None:
        """Continue from the checkpoint at `path` (a collective)."""
        state = load_checkpoint(path, self.dmp, self.optimizer)
        for key, mine in (("steps_per_epoch", self.steps_per_epoch),
                          ("total_steps", self.total_steps)):
            if state.get(key) != mine:
                raise NASRecError(f"{path}: field '{key}': the checkpoint has {state.get(key)}, "
                                  f"this run {mine} (batch size, data or steps changed)")
        self.step = int(state["step"])
        self.schedule.load_state_dict(state["schedule"])
        if self.path_sampler is not None:
            if not state.get("path_sampler"):
                raise NASRecError(f"{path}: no path sampler state: not a supernet checkpoint")
            self.path_sampler.load_state_dict(state["path_sampler"])
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        self._samples_before = int(state.get("samples", 0))
        self._seconds_before = float(state.get("train_seconds", 0.0))
        if self.context.is_main:
            self._truncate_metrics(self.step)
        logger.info("resumed from %s at step %d of %d", path, self.step, self.total_steps)

    # --- files -----------------------------------------------------------------------------

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        if not self.context.is_main:
            return
        os.makedirs(self.config.output, exist_ok=True)
        path = os.path.join(self.config.output, name)
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(path + ".tmp", path)

    def _truncate_metrics(self, step: int) -> None:
        path = os.path.join(self.config.output, METRICS_FILE)
        if not os.path.exists(path):
            return
        with open(path) as handle:
            kept = [line for line in handle if line.strip() and json.loads(line)["step"] <= step]
        with open(path, "w") as handle:
            handle.writelines(kept)

    def _log(self, record: dict[str, Any]) -> None:
        if self.context.is_main:
            with open(os.path.join(self.config.output, METRICS_FILE), "a") as handle:
                handle.write(json.dumps(record) + "\n")

    # --- the run ---------------------------------------------------------------------------

    def _check_same_path(self, path: Any) -> None:
        if self.context.world_size == 1:
            return
        digest = torch.tensor([_path_digest(path)], dtype=torch.int64)
        low, high = digest.clone(), digest.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if low.item() != high.item():
            raise NASRecError(f"step {self.step}: ranks sampled different supernet paths; "
                              "the path sampler must be seeded identically on every rank")

    def _global_mean(self, values: list[torch.Tensor]) -> list[float]:
        stacked = torch.stack([v.detach().float().reshape(()) for v in values]).cpu()
        if self.context.world_size > 1:
            stacked = stacked.to(self.context.device)
            dist.all_reduce(stacked)
            stacked = stacked.cpu() / self.context.world_size
        return stacked.tolist()

    def train(self) -> None:
        """Run the remaining training steps (checkpointing and logging on the way)."""
        config = self.config
        if self.step >= self.total_steps:
            return
        self.dmp.train()
        pipeline = self._pipeline()
        batches = self._batches()
        progress = None
        if self.context.is_main and config.progress_bar:
            from tqdm import tqdm
            progress = tqdm(total=self.total_steps, initial=self.step, unit="step",
                            desc="train", dynamic_ncols=True)
        window: list[torch.Tensor] = []
        window_start = time.perf_counter()
        run_start = window_start
        start_step = self.step
        samples_per_step = config.batch_size
        try:
            while self.step < self.total_steps:
                if self.path_sampler is not None:
                    path = self.path_sampler.next_path(self.step)
                    if self.step % config.log_every == 0:
                        self._check_same_path(path)
                    self.body.set_architecture(path)
                step_lrs = self.schedule.get_last_lr()  # the rates this step trains with
                loss, _, _ = pipeline.progress(batches)
                window.append(loss)
                self.schedule.step()
                self.step += 1
                if self.step % config.log_every == 0 or self.step == self.total_steps:
                    now = time.perf_counter()
                    losses = self._global_mean(window)
                    rate = samples_per_step * len(window) / max(now - window_start, 1e-9)
                    for offset, value in enumerate(losses):
                        step = self.step - len(losses) + offset + 1
                        if config.log_every == 1 or step == self.step:
                            self._log({"step": step, "loss": value if config.log_every == 1
                                       else sum(losses) / len(losses),
                                       "lr": step_lrs[-1], "embedding_lr": step_lrs[0],
                                       "samples_per_second": rate})
                    self.last_loss = losses[-1]
                    if progress is not None:
                        progress.set_postfix(loss=f"{sum(losses) / len(losses):.4f}",
                                             samples_s=f"{rate:,.0f}")
                    window, window_start = [], time.perf_counter()
                if progress is not None:
                    progress.update(1)
                every = config.checkpoint_every
                if every and self.step % every == 0 and self.step < self.total_steps:
                    self._account(start_step, run_start)
                    saving = time.perf_counter()
                    self.save()
                    start_step, run_start = self.step, time.perf_counter()
                    window_start += run_start - saving  # throughput excludes checkpoints
                if self.callbacks:  # throughput excludes callbacks (e.g. evaluations)
                    self._account(start_step, run_start)
                    called = time.perf_counter()
                    try:
                        for callback in self.callbacks:
                            callback(self)
                    finally:
                        start_step, run_start = self.step, time.perf_counter()
                        window_start += run_start - called
        finally:
            if progress is not None:
                progress.close()
            self._account(start_step, run_start)  # also when a callback stops the run
        if hasattr(pipeline, "detach"):
            pipeline.detach()

    def _account(self, start_step: int, start_time: float) -> None:
        self._samples_before += (self.step - start_step) * self.config.batch_size
        self._seconds_before += time.perf_counter() - start_time

    def evaluate(self, loader: Any = None) -> dict[str, float]:
        """Log loss and AUC over the whole evaluation split (every rank's rows)."""
        loader = loader if loader is not None else self.eval_loader
        if loader is None:
            raise NASRecError("no evaluation loader")
        if self.path_sampler is not None:
            if self.eval_architecture is None:
                raise NASRecError("evaluating a supernet needs eval_architecture")
            self.body.set_architecture(self.eval_architecture)
        return evaluate(self.dmp, loader, self.context.device)

    def _early_stopping(self) -> Optional[EarlyStopping]:
        """The per-epoch early-stopping callback of `config.patience` (None without)."""
        config = self.config
        if config.patience is None:
            return None
        if self.eval_loader is None:
            raise NASRecError("--patience needs an evaluation split (--eval-split)")
        every = config.checkpoint_every
        # the best epoch is at most `patience` epochs (and their own checkpoints) back
        config.keep_checkpoints = max(config.keep_checkpoints, (config.patience + 2) * (
            1 + (self.steps_per_epoch // every if every else 0)))
        return EarlyStopping(os.path.join(config.output, EARLY_STOPPING_FILE),
                             self.eval_loader, config.patience, self.context.is_main,
                             config.monitor, config.lr_plateau_factor)

    def _restore_best(self, stopping: EarlyStopping) -> dict[str, Any]:
        """Load the best epoch's checkpoint, delete the others; its record."""
        best = stopping.best()
        assert best is not None
        checkpoint = os.path.join(self.config.output, best["checkpoint"])
        load_checkpoint(checkpoint, self.dmp, self.optimizer)
        barrier()
        if self.context.is_main:
            for _, path in list_checkpoints(self.checkpoint_dir):
                if os.path.abspath(path) != os.path.abspath(checkpoint):
                    shutil.rmtree(path, ignore_errors=True)
        barrier()
        logger.info("best epoch %d (%s %.5f): %s", best["epoch"], stopping.monitor,
                    best["val"][stopping.monitor], checkpoint)
        return best

    def fit(self) -> dict[str, Any]:
        """Resume if asked, train to the end (or the early stop), checkpoint, evaluate, write
        `results.json`."""
        config = self.config
        if self.context.is_main:
            os.makedirs(config.output, exist_ok=True)
        stopping = self._early_stopping()
        if stopping is not None:
            self.callbacks.append(stopping)
        if config.resume:
            path = latest_checkpoint(self.checkpoint_dir)
            if path is not None:
                self.resume(path)
                if stopping is not None:
                    stopping.restore(self.step)
            else:
                logger.info("--resume: no checkpoint in %s, starting afresh", self.checkpoint_dir)
        else:
            if config.overwrite and self.context.is_main:
                shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
                for name in (RESULTS_FILE, METRICS_FILE, EARLY_STOPPING_FILE):
                    if os.path.exists(os.path.join(config.output, name)):
                        os.remove(os.path.join(config.output, name))
            barrier()
            if latest_checkpoint(self.checkpoint_dir) is not None:
                raise NASRecError(f"{config.output}: holds checkpoints of an earlier run; "
                                  "continue it with --resume, replace it with --overwrite or "
                                  "choose another --output")
            if self.context.is_main:
                self._truncate_metrics(-1)
        self._write_json(CONFIG_FILE, {
            "config": config.to_dict(), "world_size": self.context.world_size,
            "device": str(self.context.device), "backend": self.context.backend,
            "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
            "plan": str(self.dmp.plan),
        })
        if stopping is None or not stopping.stopped:
            try:
                self.train()
            except EarlyStop:
                if stopping is None:  # a caller's own early stopping (nasrec final)
                    raise
                logger.info("early stop after epoch %d", stopping.epochs[-1]["epoch"])
        saved = [step for step, _ in list_checkpoints(self.checkpoint_dir)]
        if config.checkpoint_every != 0 and self.step not in saved:
            self.save()
        results: dict[str, Any] = {
            "steps": self.step, "world_size": self.context.world_size,
            "train_samples": self._samples_before,
            "train_seconds": self._seconds_before,
            "samples_per_second": self._samples_before / self._seconds_before
            if self._seconds_before > 0 else None,
            "final_train_loss": self.last_loss,
        }
        if stopping is not None and stopping.best() is not None:
            best = self._restore_best(stopping)
            results[config.eval_split] = best["val"]
            results["best_epoch"] = best["epoch"]
            results["early_stopping"] = stopping.summary()
        elif self.eval_loader is not None and config.eval_split:
            metrics = self.evaluate()
            results[config.eval_split] = metrics
            logger.info("%s: log loss %.5f, AUC %.5f over %d rows", config.eval_split,
                        metrics["log_loss"], metrics["auc"], metrics["rows"])
        results["config"] = config.to_dict()
        self._write_json(RESULTS_FILE, results)
        return results


def make_loaders(config: TrainConfig, context: DistributedContext) -> tuple[Any, Any]:
    """This rank's train loader (shuffled, seeded, full batches only) and evaluation loader
    (every row, in order) of `config.data`."""
    from nasrec_torchrec.data.loader import ParquetBatchLoader

    world = context.world_size
    train = ParquetBatchLoader(
        config.data, "train", config.batch_size // world, embedding_cap=config.embedding_cap,
        shuffle=config.shuffle, seed=config.seed, drop_last=True, rank=context.rank,
        world_size=world)
    evaluation = None
    if config.eval_split:
        evaluation = ParquetBatchLoader(
            config.data, config.eval_split, config.eval_batch_size // world,
            embedding_cap=config.embedding_cap, shuffle=False, drop_last=False,
            rank=context.rank, world_size=world)
    return train, evaluation
