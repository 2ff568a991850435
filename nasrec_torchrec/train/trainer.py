"""One trainer for supernets, fixed architectures and baselines, on TorchRec.

The caller gives a body (`Supernet`, `NASRecNet`, a baseline: any module
`body(dense [B, Dn], sparse [B, F, E]) -> logits [B]`) and the loaders; the trainer owns the
embedding tables (from the loader's schema, sharded by `DistributedModelParallel` with the
fused Adagrad), the optimizers and LR schedule, TorchRec's train pipeline, checkpoints,
`metrics.jsonl`, `config.json` and `results.json`.

Supernet training: with a `path_sampler`, every step first draws a path
(`path_sampler.next_path(step)`, seeded identically on every rank) and sets it with
`body.set_architecture(path)`. The supernet records the gradients of the weight slices the
path used (`nn.elastic.SliceGradients`); `SlicedAdagrad` (or, with `optimizer` "adam",
`SlicedAdam`: Adam exact per element) averages them over the ranks and updates those slices
only, so DDP leaves the supernet's parameters alone.

The model is the public train wrapper `nn.model.NASRecModelTrain` (with `config.embedding_l2`,
its pooled-embedding L2 term; the logged train loss is the BCE alone); the tables are sharded
as `train.sharding` says and initialised by `embeddings.init_embedding_weights`; the files go
through `train.run_dir`. Optimizers: `config.optimizer` "adagrad" (default, the paper's) or
"adam" (see `nasrec_torchrec.train.optimizers`).

Early stopping: with `config.patience`, `eval_split` is evaluated after every epoch
(`train.early_stopping`); the run stops after `patience` epochs without improvement of
`config.monitor`, the best epoch's checkpoint is loaded and kept (the others deleted), and
`results.json` reports its metrics with every epoch's record (`early_stopping`). Precise BN
before evaluations: `config.bn_recalibration_batches` (`train.batch_norm_recalibration`).
`config.compile`: the body's training steps through `torch.compile` (`NASRecModel`).

Resuming: a checkpoint holds the sharded model, both optimizers, the LR schedule, the path
sampler's state, torch's RNG state and the step (the data position is the step: the train
loader yields the same number of batches in every epoch). `resume=True` continues from the
latest one, so a killed and resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torchrec.datasets.utils import Batch
from torchrec.distributed.train_pipeline import TrainPipelineBase, TrainPipelineSparseDist

from nasrec_torchrec.artifacts import CONFIG_FILE, EARLY_STOPPING_FILE, RESULTS_FILE
from nasrec_torchrec.embeddings import (
    build_embedding_bag_collection, init_embedding_weights, shard_model)
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.elastic import SliceGradients, attach_slice_gradients
from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.train.batch_norm_recalibration import batch_norm_recalibration
from nasrec_torchrec.train.checkpoint import (
    latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint)
from nasrec_torchrec.train.config import TrainConfig
from nasrec_torchrec.train.distributed import DistributedContext, global_mean, same_on_every_rank
from nasrec_torchrec.train.divergence import LossGuard
from nasrec_torchrec.train.early_stopping import EarlyStop, EarlyStopping, checkpoints_to_keep
from nasrec_torchrec.train.metrics import evaluate
from nasrec_torchrec.train.optimizers import attach_fused_adam, build_optimizer
from nasrec_torchrec.train.precision import check_body_execution
from nasrec_torchrec.train.run_dir import RunDirectory, refuse_changed_settings
from nasrec_torchrec.train.schedules import LRSchedule, warmup_length
from nasrec_torchrec.train.sharding import check_table_sharding, table_sharding

logger = logging.getLogger(__name__)


def planned_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of a run: `epochs` passes of `steps_per_epoch`, at most `max_steps`."""
    total = steps_per_epoch * config.epochs
    return min(total, config.max_steps) if config.max_steps else total


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
        check_table_sharding(config.optimizer, config.sharding_type, context.device)
        check_body_execution(config, context.device, supernet=path_sampler is not None)
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
        self.run_dir = RunDirectory(config.output, context.is_main)
        self.checkpoint_dir: str = self.run_dir.checkpoint_dir
        self.loss_guard = LossGuard(config.max_loss, self.checkpoint_dir)
        self.bn_recalibration = batch_norm_recalibration(config, context, body,
                                                         supernet=path_sampler is not None)
        self.early_stopping: Optional[EarlyStopping] = self._early_stopping()
        if self.early_stopping is not None:
            self.callbacks.append(self.early_stopping)

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
            max_grad_norm=config.clip_grad_norm or None)
        warmup_steps = warmup_length(self.total_steps, config.lr_warmup_steps,
                                     config.lr_warmup_fraction)
        self.schedule = LRSchedule(self.optimizer, self.total_steps, warmup_steps,
                                   schedule=config.lr_schedule)

    # --- setup ---------------------------------------------------------------------------

    def _build_model(self) -> nn.Module:
        config = self.config
        ebc = build_embedding_bag_collection(self.schema, config.embedding_dim,
                                             config.embedding_cap)
        model = NASRecModelTrain(NASRecModel(ebc, len(self.schema.dense), self.body,
                                             config.precision, config.compile),
                                 config.embedding_l2)
        if config.optimizer == "adam" and self.context.device.type == "cuda":
            attach_fused_adam(model, config.embedding_learning_rate, config.eps,
                              tuple(config.betas),  # type: ignore[arg-type]
                              config.embedding_weight_decay)
        constraints, plan = table_sharding(model, self.schema.sparse_names, config.optimizer,
                                           config.sharding_type, self.context.world_size,
                                           self.context.device)
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
        init_embedding_weights(dmp, config.seed, config.embedding_init_std)
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
        """Continue from the checkpoint at `path` (a collective); settings that change the
        results must be the checkpoint's."""
        refuse_changed_settings(path, self.config)
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
        self.run_dir.truncate_metrics(self.step)
        logger.info("resumed from %s at step %d of %d", path, self.step, self.total_steps)

    # --- the run ---------------------------------------------------------------------------

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
                    if self.step % config.log_every == 0 and not same_on_every_rank(path):
                        raise NASRecError(f"step {self.step}: ranks sampled different supernet "
                                          "paths; the path sampler must be seeded identically "
                                          "on every rank")
                    self.body.set_architecture(path)
                step_lrs = self.schedule.get_last_lr()  # the rates this step trains with
                loss, _, _ = pipeline.progress(batches)
                window.append(loss)
                self.schedule.step()
                self.step += 1
                if self.step % config.log_every == 0 or self.step == self.total_steps:
                    now = time.perf_counter()
                    losses = global_mean(window, self.context.device)
                    rate = samples_per_step * len(window) / max(now - window_start, 1e-9)
                    for offset, value in enumerate(losses):
                        step = self.step - len(losses) + offset + 1
                        if config.log_every == 1 or step == self.step:
                            self.run_dir.append_metrics({
                                "step": step, "loss": value if config.log_every == 1
                                else sum(losses) / len(losses),
                                "lr": step_lrs[-1], "embedding_lr": step_lrs[0],
                                "samples_per_second": rate})
                    self.last_loss = losses[-1]
                    self.loss_guard.check(losses, self.step)  # after its metrics line
                    if progress is not None:
                        progress.set_postfix(loss=f"{sum(losses) / len(losses):.4f}",
                                             samples_s=f"{rate:,.0f}")
                    window, window_start = [], time.perf_counter()
                if progress is not None:
                    progress.update(1)
                every = config.checkpoint_every
                if every and self.step % every == 0 and self.step < self.total_steps:
                    if window:  # only the steps that passed are checkpointed
                        self.loss_guard.check(global_mean(window, self.context.device),
                                              self.step, record=False)
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

    def evaluate(self, loader: Any = None, architecture: Any = None) -> dict[str, float]:
        """Log loss and AUC over the whole evaluation split (every rank's rows; a collective);
        a supernet on `architecture` (default: `eval_architecture`)."""
        loader = loader if loader is not None else self.eval_loader
        if loader is None:
            raise NASRecError("no evaluation loader")
        if self.path_sampler is not None:
            architecture = self.eval_architecture if architecture is None else architecture
            if architecture is None:
                raise NASRecError("evaluating a supernet needs eval_architecture")
            self.body.set_architecture(architecture)
        return evaluate(self.dmp, loader, self.context.device)

    def recalibrate_batch_norm(self) -> None:
        """With `config.bn_recalibration_batches`: re-estimate the BatchNorm statistics of the
        model on the first training batches (a collective; before every evaluation)."""
        if self.bn_recalibration is not None:
            self.bn_recalibration(self.dmp)

    def _early_stopping(self) -> Optional[EarlyStopping]:
        """The per-epoch early-stopping callback of `config.patience` (None without)."""
        config = self.config
        if config.patience is None:
            return None
        if self.eval_loader is None:
            raise NASRecError("--patience needs an evaluation split (--eval-split)")
        config.keep_checkpoints = max(config.keep_checkpoints, checkpoints_to_keep(
            config.patience, self.steps_per_epoch, config.checkpoint_every))
        return EarlyStopping(self.run_dir.path(EARLY_STOPPING_FILE), self.eval_loader,
                             config.patience, self.context.is_main, config.monitor,
                             config.lr_plateau_factor)

    def fit(self) -> dict[str, Any]:
        """Resume if asked, train to the end (or the early stop), checkpoint, evaluate, write
        `results.json`."""
        config = self.config
        stopping = self.early_stopping
        self.run_dir.create()
        if config.resume:
            path = latest_checkpoint(self.checkpoint_dir)
            if path is not None:
                self.resume(path)
                if stopping is not None:
                    stopping.restore(self.step)
            else:
                logger.info("--resume: no checkpoint in %s, starting afresh", self.checkpoint_dir)
        else:
            self.run_dir.start_fresh(config.overwrite)
        self.run_dir.write_json(CONFIG_FILE, {
            "config": config.to_dict(), "world_size": self.context.world_size,
            "device": str(self.context.device), "backend": self.context.backend,
            "total_steps": self.total_steps, "steps_per_epoch": self.steps_per_epoch,
            "plan": str(self.dmp.plan),
        })
        if stopping is None or not stopping.stopped:
            try:
                self.train()
            except EarlyStop:
                logger.info("early stop after epoch %d", stopping.epochs[-1]["epoch"])
        best_epoch = stopping is not None and stopping.best() is not None
        if not best_epoch:  # the last checkpoint and the evaluation carry them
            self.recalibrate_batch_norm()
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
        if best_epoch:
            best = stopping.restore_best(self)
            results[config.eval_split] = best["val"]
            results["best_epoch"] = best["epoch"]
            results["early_stopping"] = stopping.summary()
        elif self.eval_loader is not None and config.eval_split:
            metrics = self.evaluate()
            results[config.eval_split] = metrics
            logger.info("%s: log loss %.5f, AUC %.5f over %d rows", config.eval_split,
                        metrics["log_loss"], metrics["auc"], metrics["rows"])
        results["config"] = config.to_dict()
        self.run_dir.write_json(RESULTS_FILE, results)
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
    return train, make_eval_loader(config, context) if config.eval_split else None


def make_eval_loader(config: TrainConfig, context: DistributedContext,
                     max_rows: Optional[int] = None) -> Any:
    """This rank's loader of `config.eval_split`: every row (or the first `max_rows`), in
    order."""
    from nasrec_torchrec.data.loader import ParquetBatchLoader

    return ParquetBatchLoader(
        config.data, config.eval_split, config.eval_batch_size // context.world_size,
        embedding_cap=config.embedding_cap, shuffle=False, drop_last=False,
        rank=context.rank, world_size=context.world_size, max_rows=max_rows).require_rows(
            "the evaluation (--eval-split; '' skips it)")
