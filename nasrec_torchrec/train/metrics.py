"""Log loss and AUC over a whole split, exact across ranks.

Every rank's logits and labels are gathered to every rank (with a size exchange, since ranks
may hold different numbers of rows), and the metrics are computed once over the union in
float64: never an average of per-rank figures.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from nasrec_torchrec.errors import NASRecError


def log_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean binary cross-entropy of `sigmoid(logits)` against 0/1 `labels`, in float64."""
    logits = logits.detach().double().flatten()
    labels = labels.detach().double().flatten()
    if logits.numel() == 0:
        raise NASRecError("log loss of an empty split")
    return float(F.binary_cross_entropy_with_logits(logits, labels))


def auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic over average ranks.

    Tied scores share their average rank, so a tie between a positive and a negative counts
    one half. NaN when a class is missing.
    """
    scores = scores.detach().double().flatten()
    labels = labels.detach().flatten() > 0.5
    positives = int(labels.sum())
    negatives = labels.numel() - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = torch.argsort(scores, stable=True)
    sorted_scores = scores[order]
    _, counts = torch.unique_consecutive(sorted_scores, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # 1-based rank of the last of each tie group
    average_ranks = (ends - (counts.double() - 1) / 2).repeat_interleave(counts)
    ranks = torch.empty_like(scores)
    ranks[order] = average_ranks
    rank_sum = float(ranks[labels].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def binary_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """`{"log_loss", "auc", "rows", "positive_rate"}` of one set of logits and labels."""
    return {
        "log_loss": log_loss(logits, labels),
        "auc": auc(logits, labels),
        "rows": int(labels.numel()),
        "positive_rate": float(labels.double().mean()) if labels.numel() else float("nan"),
    }


def gather_rows(local: torch.Tensor, group: Optional[dist.ProcessGroup] = None
                ) -> torch.Tensor:
    """Concatenate the 1-D `local` tensors of all ranks, in rank order, on every rank.

    Ranks may hold different numbers of rows: sizes are exchanged first and each tensor is
    padded to the largest before `all_gather`. Without a process group, returns `local`.
    """
    local = local.detach().flatten()
    if not dist.is_initialized() or dist.get_world_size(group) == 1:
        return local
    world_size = dist.get_world_size(group)
    size = torch.tensor([local.numel()], dtype=torch.int64, device=local.device)
    sizes = [torch.zeros_like(size) for _ in range(world_size)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = torch.zeros(longest, dtype=local.dtype, device=local.device)
    padded[:local.numel()] = local
    pieces = [torch.zeros_like(padded) for _ in range(world_size)]
    dist.all_gather(pieces, padded, group=group)
    return torch.cat([piece[:count] for piece, count in zip(pieces, counts)])


class MetricAccumulator:
    """Collects a split's logits and labels batch by batch; `compute()` gathers all ranks.

    Example::

        accumulator = MetricAccumulator()
        for batch in loader:
            _, (_, logits, labels) = model(batch)
            accumulator.update(logits, labels)
        metrics = accumulator.compute()  # the same dict on every rank
    """

    def __init__(self) -> None:
        self._logits: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch (any device; kept on CPU as float32 logits and labels)."""
        self._logits.append(logits.detach().float().flatten().cpu())
        self._labels.append(labels.detach().float().flatten().cpu())

    def compute(self, group: Optional[dist.ProcessGroup] = None,
                device: Optional[torch.device] = None) -> dict[str, float]:
        """Metrics over the union of all ranks' rows (a collective: every rank must call it).

        Args:
            group: process group (default world).
            device: where the gather happens (CUDA for NCCL; CPU for gloo).
        """
        device = device or torch.device("cpu")
        logits = torch.cat(self._logits) if self._logits else torch.zeros(0)
        labels = torch.cat(self._labels) if self._labels else torch.zeros(0)
        all_logits = gather_rows(logits.to(device), group).cpu()
        all_labels = gather_rows(labels.to(device), group).cpu()
        return binary_metrics(all_logits, all_labels)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[object],
             device: Optional[torch.device] = None,
             group: Optional[dist.ProcessGroup] = None) -> dict[str, float]:
    """Log loss and AUC of `model` over every batch of every rank.

    Args:
        model: a train wrapper (e.g. the DMP of `NASRecModelTrain`) with
            `model(batch) -> (loss, (loss, logits, labels))`; put in eval mode meanwhile.
        batches: this rank's batches of the split (`torchrec.datasets.utils.Batch`); ranks
            may hold different numbers of batches and rows.
        device: the compute device (batches are moved there).
        group: process group of the ranks that share the split.
    """
    device = device or torch.device("cpu")
    distributed = dist.is_initialized() and dist.get_world_size(group) > 1
    was_training = model.training
    model.eval()
    accumulator = MetricAccumulator()
    iterator = iter(batches)
    filler: object = None
    try:
        while True:
            batch = next(iterator, None)
            if distributed:
                # Sharded embeddings run collectives in every forward: all ranks step together,
                # a rank out of batches re-runs its last one and drops the result.
                more = torch.tensor([0 if batch is None else 1], device=device)
                dist.all_reduce(more, op=dist.ReduceOp.MAX, group=group)
                if not more.item():
                    break
                if batch is None:
                    if filler is None:
                        raise NASRecError("evaluation: this rank got no batch of the split; "
                                          "use fewer ranks or a smaller batch size")
                    model(filler)
                    continue
            elif batch is None:
                break
            batch = batch.to(device)  # type: ignore[attr-defined]
            filler = batch
            _, (_, logits, labels) = model(batch)
            accumulator.update(logits, labels)
    finally:
        model.train(was_training)
    return accumulator.compute(group, device)
