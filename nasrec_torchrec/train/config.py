"""`TrainConfig`: every setting of a training run, as one JSON-able dataclass.

The same config gives the same run on any number of ranks: `batch_size` is the global batch
(each of W ranks takes `batch_size / W` rows of it), and every random choice is seeded by
`seed`. The effective config is written beside the results (`config.json`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping, Optional

from nasrec_torchrec.data.schema import DEFAULT_EMBEDDING_CAP
from nasrec_torchrec.errors import NASRecError

DEVICE_CHOICES = ("auto", "cpu", "cuda")

PIPELINES = ("auto", "base", "sparse_dist")

OPTIMIZERS = ("adagrad", "adam")

MONITORS = ("auc", "log_loss")


@dataclass
class TrainConfig:
    """A training run (supernet, fixed architecture or baseline).

    Args:
        data: a prepared dataset directory.
        output: where metrics.jsonl, config.json, results.json and checkpoints/ go.
        batch_size: global rows per step (divided evenly over the ranks).
        eval_batch_size: global rows per evaluation step.
        epochs: passes over the training split.
        max_steps: stop after this many steps (None: the epochs' steps).
        learning_rate: dense rate (paper: Adagrad 0.04).
        embedding_learning_rate: rate of the tables.
        eps: epsilon of the optimizer (dense and tables).
        optimizer: "adagrad" (the paper's: fused exact Adagrad for the tables, dense Adagrad)
            or "adam" (see `nasrec_torchrec.train.optimizers`).
        betas: Adam's (beta1, beta2).
        embedding_l2: weight of the pooled-embedding L2 term added to the training loss:
            `embedding_l2 * mean over the batch of sum over features and dims of e^2` (any
            optimizer, any sharding).
        embedding_weight_decay: L2 on the table rows through the optimizer (adam only:
            `weight_decay` of torch Adam over whole tables on CPU, of the fused ADAM on the
            rows of the batch on CUDA); FuxiCTR's `embedding_regularizer` on CPU.
        clip_grad_norm: clip the global L2 norm of the dense gradients (after the cross-rank
            reduction) to this before each dense optimizer step (the official code: 5.0);
            the fused tables, updated inside the backward by FBGEMM, are not included
            (None: no clipping).
        lr_schedule: "cosine" (over the run's steps) or "constant".
        lr_warmup_fraction: linear LR warm-up over this fraction of the steps.
        embedding_dim: E.
        embedding_cap: rows per table at most (search); None for full tables.
        embedding_init_std: draw the tables from N(0, std^2) (FuxiCTR: 1e-4); None: uniform
            in +-1/sqrt(rows) (`embeddings.init_embedding_weights`).
        seed: seeds the dense init, the tables, the data order and the path sampler.
        shuffle: shuffle the training data (seeded).
        device: "auto", "cpu" or "cuda".
        threads: intra-op threads per rank (None: OMP_NUM_THREADS or cores / local ranks).
        pipeline: "auto" (sparse_dist on CUDA, base on CPU), "base" or "sparse_dist".
        checkpoint_every: checkpoint every N steps (None: only at the end); 0 disables all.
        keep_checkpoints: checkpoints kept.
        resume: continue from the output's latest checkpoint, if any.
        overwrite: without resume, delete an earlier run's checkpoints and metrics in output.
        log_every: steps per metrics.jsonl line.
        eval_split: split evaluated at the end ("" to skip).
        patience: evaluate `eval_split` after every epoch and stop after this many epochs
            without improvement; the results and the kept checkpoint are the best epoch's
            (None: no early stopping).
        monitor: the early-stopping metric, "auc" (higher is better) or "log_loss".
        lr_plateau_factor: with `patience`, multiply the rates by this after every epoch
            without improvement (FuxiCTR's reduce-on-plateau: 0.1; 1.0: never).
        memory_budget_bytes: per-rank memory for the planner.
        sharding_type: force one sharding type for every table (e.g. "table_wise").
        progress_bar: show tqdm on rank 0.
        extra: free-form settings of the caller (space, strategy, architecture file...).
    """

    data: str = ""
    output: str = ""
    batch_size: int = 512
    eval_batch_size: int = 4096
    epochs: int = 1
    max_steps: Optional[int] = None
    learning_rate: float = 0.04
    embedding_learning_rate: float = 0.04
    eps: float = 1e-8
    optimizer: str = "adagrad"
    betas: tuple[float, float] = (0.9, 0.999)
    embedding_l2: float = 0.0
    embedding_weight_decay: float = 0.0
    clip_grad_norm: Optional[float] = None
    lr_schedule: str = "cosine"
    lr_warmup_fraction: float = 0.0
    embedding_dim: int = 16
    embedding_cap: Optional[int] = DEFAULT_EMBEDDING_CAP
    embedding_init_std: Optional[float] = None
    seed: int = 0
    shuffle: bool = True
    device: str = "auto"
    threads: Optional[int] = None
    pipeline: str = "auto"
    checkpoint_every: Optional[int] = None
    keep_checkpoints: int = 3
    resume: bool = False
    overwrite: bool = False
    log_every: int = 50
    eval_split: str = "val"
    patience: Optional[int] = None
    monitor: str = "auc"
    lr_plateau_factor: float = 1.0
    memory_budget_bytes: Optional[int] = None
    sharding_type: Optional[str] = None
    progress_bar: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self, world_size: int = 1) -> None:
        """Raise `NASRecError` naming the field at fault."""
        def bad(name: str, why: str) -> NASRecError:
            return NASRecError(f"train config: field '{name}': {getattr(self, name)!r} {why}")

        for name in ("batch_size", "eval_batch_size", "epochs", "embedding_dim", "log_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if self.batch_size % world_size or self.eval_batch_size % world_size:
            name = "batch_size" if self.batch_size % world_size else "eval_batch_size"
            raise bad(name, f"is not divisible by the {world_size} ranks")
        if self.max_steps is not None and self.max_steps < 1:
            raise bad("max_steps", "must be at least 1")
        if self.embedding_cap is not None and self.embedding_cap < 2:
            raise bad("embedding_cap", "must be at least 2 (or None for full tables)")
        if self.lr_schedule not in ("cosine", "constant"):
            raise bad("lr_schedule", "is not 'cosine' or 'constant'")
        if not 0.0 <= self.lr_warmup_fraction < 1.0:
            raise bad("lr_warmup_fraction", "is not in [0, 1)")
        if self.pipeline not in PIPELINES:
            raise bad("pipeline", f"is not one of {PIPELINES}")
        if self.checkpoint_every is not None and self.checkpoint_every < 0:
            raise bad("checkpoint_every", "must be >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"is not one of {OPTIMIZERS}")
        if len(self.betas) != 2 or not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise bad("betas", "must be two numbers in [0, 1)")
        if self.embedding_init_std is not None and self.embedding_init_std <= 0:
            raise bad("embedding_init_std", "must be > 0 (or None)")
        if self.embedding_l2 < 0:
            raise bad("embedding_l2", "must be >= 0")
        if self.embedding_weight_decay < 0:
            raise bad("embedding_weight_decay", "must be >= 0")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise bad("clip_grad_norm", "must be > 0 (or None)")
        if self.embedding_weight_decay and self.optimizer != "adam":
            raise bad("embedding_weight_decay", "needs optimizer 'adam' (FBGEMM's exact "
                      "Adagrad has no weight decay); use embedding_l2")
        if self.patience is not None:
            if self.patience < 1:
                raise bad("patience", "must be at least 1")
            if not self.eval_split:
                raise bad("patience", "needs an eval_split to monitor")
        if self.monitor not in MONITORS:
            raise bad("monitor", f"is not one of {MONITORS}")
        if not 0.0 < self.lr_plateau_factor <= 1.0:
            raise bad("lr_plateau_factor", "is not in (0, 1]")
        if not self.output:
            raise bad("output", "is empty")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> "TrainConfig":
        """From a dict (e.g. a JSON file); unknown fields are an error naming `source`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NASRecError(f"{source}: unknown field(s) {unknown}; known: {sorted(known)}")
        values = dict(data)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    @classmethod
    def load(cls, path: str) -> "TrainConfig":
        """From a JSON file."""
        try:
            with open(path) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise NASRecError(f"{path}: not found") from None
        except json.JSONDecodeError as error:
            raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
        return cls.from_dict(data, source=path)
