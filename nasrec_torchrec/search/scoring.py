"""Scoring subnets of one loaded supernet: inherit, fine-tune the final FC, evaluate.

The supernet (embedding tables + body) is loaded once, in this process, from the checkpoint
directory `nasrec train-supernet` wrote (`load_supernet`). Scoring a candidate never changes
it: `NASRecNet.from_supernet` copies the candidate's slices (blocks and final FC) into a
standalone subnet, and only that copy is fine-tuned.

The embeddings are frozen during scoring, so the pooled embeddings of the fine-tuning batches
and of the validation split are looked up once and kept (`cache_inputs`): every candidate then
trains on exactly the same batches and is evaluated on exactly the same rows. With
`finetune="head"` (the paper's post-training fine-tuning) the frozen body runs under
`torch.no_grad()` once per batch and only the head `[last dense | flattened last sparse] -> 1`
trains: Adagrad (lr 0.04), cosine schedule, 500 steps of 256 rows by default.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.nn.model import NASRecModel
from nasrec_torchrec.nn.networks import NASRecNet, Supernet
from nasrec_torchrec.space.architecture import Architecture

logger = logging.getLogger(__name__)

FINETUNE_MODES = ("head", "none", "full")


@dataclass
class ScoringConfig:
    """How a candidate is scored.

    Args:
        finetune: "head" (fine-tune the final FC only, the paper's default), "none" (score
            the inherited subnet as it is) or "full" (fine-tune every dense weight of the
            subnet; embeddings stay frozen).
        finetune_steps: fine-tuning steps.
        batch_size: rows per fine-tuning step.
        learning_rate: Adagrad rate (cosine schedule to 0 over the steps).
        eps: Adagrad epsilon.
        lr_schedule: "cosine" or "constant".
        seed: seeds the order of the fine-tuning rows (the same batches for every candidate).
        train_split: the split fine-tuned on.
        eval_split: the split scored (every row of it).
        eval_batch_size: rows per evaluation batch.
        eval_rows: score only the first N rows of the split (None: all).
        cache_inputs: keep the pooled embeddings of the fine-tuning and evaluation rows in
            memory (looked up once for all candidates).
    """

    finetune: str = "head"
    finetune_steps: int = 500
    batch_size: int = 256
    learning_rate: float = 0.04
    eps: float = 1e-8
    lr_schedule: str = "cosine"
    seed: int = 0
    train_split: str = "train"
    eval_split: str = "val"
    eval_batch_size: int = 4096
    eval_rows: Optional[int] = None
    cache_inputs: bool = True

    def validate(self) -> None:
        """Raise `NASRecError` naming the field at fault."""
        if self.finetune not in FINETUNE_MODES:
            raise NASRecError(f"scoring: field 'finetune': {self.finetune!r} is not one of "
                              f"{list(FINETUNE_MODES)}")
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise NASRecError(f"scoring: field '{name}': must be at least 1")
        if self.finetune_steps < 0:
            raise NASRecError("scoring: field 'finetune_steps': must be >= 0")
        if self.lr_schedule not in ("cosine", "constant"):
            raise NASRecError(f"scoring: field 'lr_schedule': {self.lr_schedule!r} is not "
                              "'cosine' or 'constant'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class LoadedSupernet:
    """A trained supernet in this process: its tables and body, read from a run directory.

    Args:
        model: `NASRecModel` (plain, unsharded `EmbeddingBagCollection` + `Supernet` body).
        data: the prepared dataset the tables index.
        embedding_cap: the table cap the supernet was trained with.
        run_dir: the `train-supernet` output; checkpoint: the checkpoint loaded; step: its step.
        config: the run's `TrainConfig` as a dict (from `config.json`).
    """

    model: NASRecModel
    data: str
    embedding_cap: Optional[int]
    run_dir: str = ""
    checkpoint: str = ""
    step: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def supernet(self) -> Supernet:
        """The supernet body."""
        return self.model.body  # type: ignore[return-value]


def load_supernet(run_dir: str, data: Optional[str] = None,
                  checkpoint: Optional[str] = None) -> LoadedSupernet:
    """Load a supernet trained by `nasrec train-supernet` (tables + body) into this process.

    The run's `config.json` gives the space, LayerNorm, embedding width and cap; the
    checkpoint (the latest under `run_dir/checkpoints` unless `checkpoint` is given) is read
    with `torch.distributed.checkpoint` into a plain, unsharded model (DCP reshards whatever
    plan and world size saved it). No process group is needed.

    Args:
        run_dir: the supernet run directory.
        data: the prepared dataset (default: the one the supernet was trained on).
        checkpoint: a `step_*` directory to load instead of the latest.
    """
    from nasrec_torchrec.data.schema import Schema
    from nasrec_torchrec.embeddings import build_embedding_bag_collection
    from nasrec_torchrec.nn.model import NASRecModelTrain
    from nasrec_torchrec.space import get_space
    from nasrec_torchrec.train.checkpoint import latest_checkpoint, load_checkpoint
    from nasrec_torchrec.train.trainer import CHECKPOINT_DIR, CONFIG_FILE

    config_path = os.path.join(run_dir, CONFIG_FILE)
    try:
        with open(config_path) as handle:
            config = json.load(handle)["config"]
    except FileNotFoundError:
        raise NASRecError(f"{config_path}: not found: is '{run_dir}' a train-supernet run "
                          "directory?") from None
    except (json.JSONDecodeError, KeyError) as error:
        raise NASRecError(f"{config_path}: not a train-supernet config: {error}") from None
    extra = config.get("extra", {})
    if extra.get("kind") != "supernet" or "space" not in extra:
        raise NASRecError(f"{config_path}: field 'extra.kind': not a supernet run")
    checkpoint = checkpoint or latest_checkpoint(os.path.join(run_dir, CHECKPOINT_DIR))
    if checkpoint is None:
        raise NASRecError(f"{run_dir}: no checkpoint under {CHECKPOINT_DIR}/ (is training "
                          "finished, or was it run with --checkpoint-every 0?)")
    data = data or config["data"]
    schema = Schema.load(data)
    embedding_dim = int(config.get("embedding_dim", 16))
    cap = config.get("embedding_cap")
    ebc = build_embedding_bag_collection(schema, embedding_dim, cap, device="cpu")
    supernet = Supernet(get_space(extra["space"]), len(schema.dense), len(schema.sparse),
                        embedding_dim=embedding_dim, layer_norm=bool(extra.get("layer_norm", True)))
    wrapper = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), supernet))
    state = load_checkpoint(checkpoint, wrapper)
    model = wrapper.model
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    logger.info("loaded supernet %s (step %d, space %s)", checkpoint, state["step"], extra["space"])
    return LoadedSupernet(model=model, data=data, embedding_cap=cap, run_dir=run_dir,
                          checkpoint=checkpoint, step=int(state["step"]), config=config)


# (dense [B, Dn], sparse embeddings [B, F, E], labels [B])
Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class SubnetScorer:
    """Scores architectures from one supernet: inherit, fine-tune, evaluate.

    Args:
        model: a `NASRecModel` whose body is a `Supernet` (its weights are never changed).
        data: the prepared dataset directory.
        embedding_cap: the cap of `model`'s tables (ids are mapped to rows with it).
        config: a `ScoringConfig`.

    Example::

        loaded = load_supernet("runs/supernet")
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
        self._train_inputs: Optional[list[Inputs]] = None
        self._eval_inputs: Optional[list[Inputs]] = None

    # --- inputs ------------------------------------------------------------------------------

    @torch.no_grad()
    def _embed(self, batch: Any) -> Inputs:
        sparse = self.model.embed(batch.sparse_features)
        return batch.dense_features, sparse, batch.labels.float()

    def _train_batches(self) -> Iterator[Inputs]:
        """The fine-tuning batches: the first `finetune_steps` full batches of the seeded,
        shuffled training order (further epochs when one is too short)."""
        from nasrec_torchrec.data.loader import ParquetBatchLoader

        config = self.config
        if config.finetune_steps == 0:
            return
        loader = ParquetBatchLoader(self.data, config.train_split, config.batch_size,
                                    embedding_cap=self.embedding_cap, shuffle=True,
                                    seed=config.seed, drop_last=True, prefetch=0)
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
        from nasrec_torchrec.data.loader import ParquetBatchLoader

        config = self.config
        loader = ParquetBatchLoader(self.data, config.eval_split, config.eval_batch_size,
                                    embedding_cap=self.embedding_cap, shuffle=False,
                                    drop_last=False, prefetch=0)
        remaining = config.eval_rows
        for batch in loader:
            dense, sparse, labels = self._embed(batch)
            if remaining is not None:
                if remaining <= 0:
                    return
                dense, sparse, labels = dense[:remaining], sparse[:remaining], labels[:remaining]
                remaining -= len(labels)
            yield dense, sparse, labels

    def train_inputs(self) -> Iterator[Inputs]:
        """The fine-tuning batches (cached after the first pass when `cache_inputs`)."""
        if not self.config.cache_inputs:
            return self._train_batches()
        if self._train_inputs is None:
            self._train_inputs = list(self._train_batches())
        return iter(self._train_inputs)

    def eval_inputs(self) -> Iterator[Inputs]:
        """The evaluation batches (cached after the first pass when `cache_inputs`)."""
        if not self.config.cache_inputs:
            return self._eval_batches()
        if self._eval_inputs is None:
            self._eval_inputs = list(self._eval_batches())
            if not self._eval_inputs:
                raise NASRecError(f"{self.data}: split '{self.config.eval_split}' is empty")
        return iter(self._eval_inputs)

    # --- scoring -----------------------------------------------------------------------------

    def subnet(self, architecture: Architecture) -> NASRecNet:
        """The standalone subnet of `architecture` with the supernet's (copied) weights."""
        with torch.random.fork_rng():  # building modules draws initial weights we overwrite
            net = NASRecNet.from_supernet(self.supernet, architecture)
        net.train()
        return net

    def finetune(self, net: NASRecNet, mode: Optional[str] = None) -> list[float]:
        """Fine-tune `net` in place (`mode` "head", "full" or "none"); the per-step losses."""
        from nasrec_torchrec.train.optimizers import CosineSchedule

        config = self.config
        mode = mode or config.finetune
        if mode not in FINETUNE_MODES:
            raise NASRecError(f"finetune: {mode!r} is not one of {list(FINETUNE_MODES)}")
        if mode == "none" or config.finetune_steps == 0:
            return []
        trainable = list(net.head.parameters()) if mode == "head" else list(net.parameters())
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        for parameter in trainable:
            parameter.requires_grad_(True)
        optimizer = torch.optim.Adagrad(trainable, lr=config.learning_rate, eps=config.eps)
        schedule = CosineSchedule(optimizer, config.finetune_steps,
                                  constant=config.lr_schedule == "constant")
        head_args: list[tuple[Any, ...]] = []
        hook = net.head.register_forward_pre_hook(lambda _, args: head_args.append(args)) \
            if mode == "head" else None
        losses = []
        try:
            for dense, sparse, labels in self.train_inputs():
                optimizer.zero_grad(set_to_none=True)
                if mode == "head":
                    with torch.no_grad():  # the frozen body, once per batch
                        net(dense, sparse)
                    features, out, ranges = head_args.pop()
                    logits = net.head(features, out, ranges).squeeze(-1)
                else:
                    logits = net(dense, sparse)
                loss = F.binary_cross_entropy_with_logits(logits, labels)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(float(loss.detach()))
        finally:
            if hook is not None:
                hook.remove()
            for parameter in net.parameters():
                parameter.requires_grad_(False)
        return losses

    @torch.no_grad()
    def evaluate(self, net: nn.Module) -> dict[str, float]:
        """Log loss and AUC of `net(dense, sparse)` over every row of the evaluation split."""
        from nasrec_torchrec.train.metrics import binary_metrics

        logits, labels = [], []
        for dense, sparse, batch_labels in self.eval_inputs():
            logits.append(net(dense, sparse).float())
            labels.append(batch_labels)
        return binary_metrics(torch.cat(logits), torch.cat(labels))

    def cost(self, architecture: Architecture) -> "Any":
        """`ModelCost` (fvcore FLOPs per sample, dense params) of `architecture`."""
        from nasrec_torchrec.analysis.flops import architecture_cost

        supernet = self.supernet
        return architecture_cost(architecture, supernet.dense_in_features,
                                 supernet.num_sparse_features, supernet.embedding_dim,
                                 supernet.layer_norm)

    def score(self, architecture: Architecture, finetune: Optional[str] = None) -> dict[str, Any]:
        """Score one candidate.

        Returns:
            `{"log_loss", "auc", "rows", "positive_rate", "finetune", "finetune_steps",
            "finetune_loss" (mean of the last 10% of steps), "mflops", "params", "seconds"}`.
        """
        start = time.perf_counter()
        mode = finetune or self.config.finetune
        net = self.subnet(architecture)
        losses = self.finetune(net, mode)
        net.eval()
        metrics = self.evaluate(net)
        cost = self.cost(architecture)
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
