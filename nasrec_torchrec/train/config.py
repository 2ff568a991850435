"""`TrainConfig`: every setting of a training run, as one JSON-able dataclass.

The same config gives the same run on any number of ranks: `batch_size` is the global batch
(each of W ranks takes `batch_size / W` rows of it), and every random choice is seeded by
`seed`. The effective config is written beside the results (`config.json`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

from nasrec_torchrec.data.schema import DEFAULT_EMBEDDING_CAP
from nasrec_torchrec.artifacts import read_json
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.model_spec import ModelSpec
from nasrec_torchrec.nn.precision import PRECISIONS
from nasrec_torchrec.settings import check, from_mapping, option
from nasrec_torchrec.train.schedules import LR_SCHEDULES

DEVICE_CHOICES = ("auto", "cpu", "cuda")
"""auto: CUDA when available, else CPU (`train.distributed.init_distributed`)."""

OPTIMIZER_CHOICES = ("adagrad", "adam")
"""The dense optimizers (`train.optimizers.dense_optimizer`; the tables follow, see there)."""

PIPELINES = ("auto", "base", "sparse_dist")

MONITORS = ("auc", "log_loss")

SHARDING_TYPES = ("table_wise", "column_wise", "table_column_wise", "row_wise")


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
            or "adam" (see `nasrec_torchrec.train.optimizers`; a supernet's body: `SlicedAdam`).
        betas: Adam's (beta1, beta2).
        embedding_l2: weight of the pooled-embedding L2 term added to the training loss:
            `embedding_l2 * mean over the batch of sum over features and dims of e^2` (any
            optimizer, any sharding).
        embedding_weight_decay: L2 on the table rows through the optimizer (adam only:
            `weight_decay` of torch Adam over whole tables on CPU, of the fused ADAM on the
            rows of the batch on CUDA); FuxiCTR's `embedding_regularizer` on CPU.
        clip_grad_norm: clip the global L2 norm of the dense gradients (after the cross-rank
            reduction) to this before each dense optimizer step (the official code's 5.0);
            the fused tables, updated inside the backward by FBGEMM, are not included
            (None, or 0 which becomes None: no clipping).
        max_loss: stop the run when the median training loss of the last 25 steps exceeds
            this (`train.divergence`; a non-finite loss always stops it).
        lr_schedule: "cosine" (over the run's steps) or "constant".
        lr_warmup_steps: linear LR warm-up over the first N steps (a shorter run ends in it).
            Adagrad's first steps move every weight by about the rate whatever its gradient;
            1000 steps keep the published architectures stable without LayerNorm too
            (`benchmarks/published_stability.py`), a small part of a real run.
        lr_warmup_fraction: warm up over this fraction of the run's steps instead (None: use
            `lr_warmup_steps`).
        precision: the dense body's forward, "fp32" or "bf16" (`torch.autocast` with fp32
            master weights; the tables stay fp32; refused on a CPU without bf16 instructions).
        compile: run the dense body's training forward and backward through
            `torch.compile` (inductor, fixed shapes; `nn.model.NASRecModel`'s `compile_body`):
            a first step of about a minute compiling, then faster steps (on a Zen 4 CPU, a
            found Criteo architecture at batch 256: 1.1x in fp32, 1.3x with bf16;
            `benchmarks/compiled_step.py`); the evaluations run the body eagerly. The losses
            equal an eager run's up to float rounding (fused kernels; dropout draws the
            eager masks). Not for a supernet.
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
        bn_recalibration_batches: "precise BN": before every evaluation of the run (each
            epoch's with `patience`, the end-of-run one) and the last checkpoint, re-estimate
            the model's BatchNorm running statistics as the plain average over the first N
            training batches, unshuffled (`train.batch_norm_recalibration`; 0: off, the
            momentum statistics of training are used; no effect without BatchNorm).
        memory_budget_bytes: per-rank memory for the planner.
        sharding_type: force one sharding type for every table (e.g. "table_wise").
        progress_bar: show tqdm on rank 0.
        model: what the run trains (written to config.json; `nasrec evaluate` and the search
            rebuild the body from it).
        source_data: the dataset `data` is a view of (the final model's train+val view).
        notes: provenance (stage, search candidate...), written and never read back.
        extra: what runs written before `model` recorded instead (read by
            `model_spec.run_model_spec` only).
    """

    data: str = option("", "prepared dataset (nasrec prepare/synth)", metavar="DIR", path=True)
    output: str = option("", "run directory (metrics, checkpoints, results)", metavar="DIR",
                         fixed_on_resume=False)
    batch_size: int = option(512, "global rows per step, divided over the ranks", minimum=1)
    eval_batch_size: int = option(4096, "global rows per evaluation batch", minimum=1)
    epochs: int = option(1, "passes over the training split", minimum=1)
    max_steps: Optional[int] = option(None, "stop after N steps", minimum=1, metavar="N")
    learning_rate: float = option(0.04, "dense learning rate", flag="--lr", above=0.0)
    embedding_learning_rate: float = option(0.04, "learning rate of the tables",
                                            flag="--embedding-lr", above=0.0)
    eps: float = option(1e-8, "optimizer epsilon", above=0.0)
    optimizer: str = option("adagrad", "adagrad (the paper's: fused exact Adagrad for the "
                            "tables) or adam (torch Adam, per element on a supernet's slices; "
                            "tables data-parallel on CPU, where FBGEMM has no Adam; fused "
                            "ADAM on CUDA)",
                            choices=OPTIMIZER_CHOICES)
    betas: tuple[float, float] = option((0.9, 0.999), "Adam's (beta1, beta2)", cli=False,
                                        minimum=0.0, below=1.0)
    embedding_l2: float = option(0.0, "add LAMBDA * (batch mean of the sum of squared pooled "
                                 "embeddings) to the training loss", minimum=0.0,
                                 metavar="LAMBDA")
    embedding_weight_decay: float = option(0.0, "adam only: L2 weight decay of the table rows "
                                           "in the optimizer (FuxiCTR's "
                                           "embedding_regularizer)", minimum=0.0,
                                           metavar="LAMBDA")
    clip_grad_norm: Optional[float] = option(
        5.0, "clip the global L2 norm of the dense gradients (after the cross-rank reduction) "
        "to NORM before the dense optimizer step, as the official NASRec code; the fused "
        "tables are not included (0: off)", minimum=0.0, metavar="NORM", none_as="0")
    max_loss: Optional[float] = option(
        100.0, "stop a diverging run: when the median training loss of the last 25 steps "
        "exceeds LOSS (a non-finite loss always stops it; the last good checkpoint is kept)",
        above=0.0, metavar="LOSS", fixed_on_resume=False)
    lr_schedule: str = option("cosine", "learning-rate schedule over the run",
                              choices=lambda: list(LR_SCHEDULES))
    lr_warmup_steps: int = option(1000, "linear learning-rate warm-up over the first N steps "
                                  "(a shorter run ends before the full rate; 0: none)",
                                  minimum=0, metavar="N")
    lr_warmup_fraction: Optional[float] = option(
        None, "warm up over this fraction of the run's steps instead of --lr-warmup-steps",
        flag="--lr-warmup", minimum=0.0, below=1.0, metavar="FRACTION")
    precision: str = option("fp32", "the dense body's forward: fp32, or bf16 under autocast "
                            "(fp32 weights and tables; needs a CPU with avx512_bf16/amx_bf16 "
                            "or a CUDA device)", choices=PRECISIONS)
    compile: bool = option(False, "compile the dense body's training steps with "
                           "torch.compile (about a minute first; not for a supernet; "
                           "evaluations run eagerly)", fixed_on_resume=False)
    embedding_dim: int = option(16, "embedding width", minimum=1)
    embedding_cap: Optional[int] = option(DEFAULT_EMBEDDING_CAP, "at most N rows per table",
                                          minimum=2, metavar="N")
    embedding_init_std: Optional[float] = option(
        None, "initialise the tables from N(0, STD^2) (FuxiCTR: 1e-4; default: uniform in "
        "+-1/sqrt(rows))", above=0.0, metavar="STD")
    seed: int = option(0, "seed of init, data order and paths")
    shuffle: bool = option(True, "train in file order")
    device: str = option("auto", "compute device", choices=DEVICE_CHOICES,
                         fixed_on_resume=False)
    threads: Optional[int] = option(None, "intra-op threads per rank", minimum=1,
                                    fixed_on_resume=False)
    pipeline: str = option("auto", "TorchRec train pipeline (auto: sparse_dist on CUDA, base "
                           "on CPU)", choices=PIPELINES, fixed_on_resume=False)
    checkpoint_every: Optional[int] = option(None, "checkpoint every N steps (default: only "
                                             "at the end; 0: never)", minimum=0,
                                             metavar="STEPS", fixed_on_resume=False)
    keep_checkpoints: int = option(3, "checkpoints kept", minimum=1, fixed_on_resume=False)
    resume: bool = option(False, "continue from the output's latest checkpoint",
                          fixed_on_resume=False)
    overwrite: bool = option(False, "replace an earlier run's checkpoints and metrics in "
                             "--output", fixed_on_resume=False)
    log_every: int = option(50, "steps per metrics.jsonl line", minimum=1,
                            fixed_on_resume=False)
    eval_split: str = option("val", "split evaluated at the end ('' skips)")
    patience: Optional[int] = option(None, "evaluate the eval split after every epoch; stop "
                                     "after EPOCHS epochs without improvement; results and "
                                     "checkpoint: the best epoch", minimum=1,
                                     metavar="EPOCHS")
    monitor: str = option("auc", "early-stopping metric", choices=MONITORS)
    lr_plateau_factor: float = option(1.0, "with --patience: multiply the rates by FACTOR "
                                      "after an epoch without improvement (1: never)",
                                      above=0.0, maximum=1.0, metavar="FACTOR")
    bn_recalibration_batches: int = option(
        0, "precise BN: before every evaluation and the last checkpoint, re-estimate the "
        "BatchNorm running statistics as the average over the first N training batches, "
        "unshuffled (0: off; no effect without BatchNorm)", minimum=0, metavar="N")
    memory_budget_bytes: Optional[int] = option(None, "per-rank memory for the planner",
                                                cli=False, minimum=1, fixed_on_resume=False)
    sharding_type: Optional[str] = option(None, "force one sharding type for every table",
                                          choices=SHARDING_TYPES, fixed_on_resume=False)
    progress_bar: bool = option(True, "no progress bar", flag="--no-progress",
                                fixed_on_resume=False)
    model: Optional[ModelSpec] = None
    source_data: Optional[str] = None
    notes: dict[str, Any] = option(default_factory=dict, cli=False, fixed_on_resume=False)
    extra: dict[str, Any] = option(default_factory=dict, cli=False, fixed_on_resume=False)

    def __post_init__(self) -> None:
        if self.clip_grad_norm == 0:  # --clip-grad-norm 0: off, recorded as runs before
            self.clip_grad_norm = None

    def validate(self, world_size: int = 1, source: str = "train config") -> None:
        """Raise `NASRecError` naming `source` and the field at fault."""
        check(self, source)

        def bad(name: str, why: str) -> NASRecError:
            return NASRecError(f"{source}: field '{name}': {getattr(self, name)!r} {why}")

        if self.batch_size % world_size or self.eval_batch_size % world_size:
            name = "batch_size" if self.batch_size % world_size else "eval_batch_size"
            raise bad(name, f"is not divisible by the {world_size} ranks")
        if self.embedding_weight_decay and self.optimizer != "adam":
            raise bad("embedding_weight_decay", "needs optimizer 'adam' (FBGEMM's exact "
                      "Adagrad has no weight decay); use embedding_l2")
        if self.patience is not None and not self.eval_split:
            raise bad("patience", "needs an eval_split to monitor")
        if not self.output:
            raise bad("output", "is empty")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> "TrainConfig":
        """From a dict (e.g. a JSON file); unknown fields and values of the wrong type are
        errors naming `source` and the field."""
        return from_mapping(cls, data, source)

    @classmethod
    def load(cls, path: str) -> "TrainConfig":
        """From a JSON file."""
        return cls.from_dict(read_json(path), source=path)
