"""The rows every candidate is scored on, embedded once and served in large chunks.

Scoring fine-tunes and evaluates every candidate on the same rows: the fine-tuning batches
(a seeded order of the training split) and the evaluation split. The embedding tables are
frozen, so the dense features, the pooled embeddings `[N, F, E]` and the labels of these rows
are the same for every candidate: `ScoringRows` holds them in memory once
(`(Dn + F E + 1) * 4` bytes a row: 1.7 kB for Criteo's 13 dense and 26 sparse features at
E = 16, so 128k fine-tuning rows take 220 MB). A split too large for the memory limit is
streamed instead: read and looked up again for every candidate, in the same order.

Either way the rows come as chunks of consecutive rows (`Inputs`), so that the frozen body runs
on thousands of rows at a time rather than on one fine-tuning batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

# (dense [B, Dn], sparse embeddings [B, F, E], labels [B])
Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def bytes_per_row(dense_features: int, sparse_features: int, embedding_dim: int) -> int:
    """Memory of one cached row (float32 dense, pooled embeddings and label)."""
    return 4 * (dense_features + sparse_features * embedding_dim + 1)


@dataclass
class ScoringRows:
    """Embedded rows held in memory: dense `[N, Dn]`, sparse `[N, F, E]`, labels `[N]`.

    Example::

        rows = ScoringRows.gather(batches)          # batches of (dense, sparse, labels)
        for dense, sparse, labels in rows.chunks(8192):
            ...
    """

    dense: torch.Tensor
    sparse: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def gather(cls, batches: Iterable[Inputs]) -> "ScoringRows":
        """Concatenate `batches` in order (no batch: zero rows)."""
        parts = list(batches)
        if not parts:
            empty = torch.empty(0)
            return cls(empty.view(0, 0), empty.view(0, 0, 0), empty)
        dense, sparse, labels = zip(*parts)
        return cls(torch.cat(dense), torch.cat(sparse), torch.cat(labels))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(t.element_size() * t.numel() for t in (self.dense, self.sparse, self.labels))

    def chunks(self, rows: int) -> Iterator[Inputs]:
        """Consecutive chunks of `rows` rows (the last may be shorter); views, no copies."""
        for start in range(0, len(self), rows):
            end = start + rows
            yield self.dense[start:end], self.sparse[start:end], self.labels[start:end]


def rechunk(batches: Iterable[Inputs], rows: int) -> Iterator[Inputs]:
    """Consecutive `batches` joined into chunks of at least `rows` rows (a whole number of
    batches each; the last chunk may be shorter)."""
    pending: list[Inputs] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += len(batch[2])
        if count >= rows:
            yield _join(pending)
            pending, count = [], 0
    if pending:
        yield _join(pending)


def _join(batches: list[Inputs]) -> Inputs:
    if len(batches) == 1:
        return batches[0]
    dense, sparse, labels = zip(*batches)
    return torch.cat(dense), torch.cat(sparse), torch.cat(labels)
