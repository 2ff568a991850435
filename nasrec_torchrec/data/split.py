"""Streaming, seeded, stratified assignment of rows to splits (train/val/test).

Method: rows are taken in stream order, separately per label. The k-th row of label y falls in
block `k // L` of that label, where L = sum of the split weights divided by their gcd (10 for
80/10/10). Each block is a seeded random permutation of a pattern holding each split exactly
weight/gcd times, so every split receives its exact share of each label up to one block: the
positive rate of every split equals the global one within L rows of rounding. The permutation
of block b of label y is `argsort(splitmix64(seed, y, b, 0..L-1))`: a pure function of
(seed, label, block), so the assignment does not depend on how the stream is chunked, memory
is O(1), and pass 1 (counting) and pass 2 (encoding) agree.

`--val-from-train SHARE` carves the val split out of a given train input with the same
splitter, its weights the kept and carved parts of the share (1/9 -> (8, 1): blocks of 9).
"""

from __future__ import annotations

from fractions import Fraction
from functools import reduce
from math import gcd

import numpy as np

from nasrec_torchrec.errors import NASRecError


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, vectorized over uint64."""
    z = np.asarray(values, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def parse_weights(text: str) -> tuple[int, ...]:
    """`"80,10,10"` -> (80, 10, 10): the train, val and test percentages (sum 100)."""
    try:
        weights = tuple(int(part) for part in text.split(","))
    except ValueError:
        weights = ()
    if len(weights) != 3 or min(weights) < 0:
        raise NASRecError(f"--split: expected three non-negative integers like 80,10,10, "
                          f"'given' or 'none', got '{text}'")
    if sum(weights) != 100:
        raise NASRecError(f"--split: the train,val,test percentages '{text}' sum to "
                          f"{sum(weights)}, not 100")
    return weights


MAX_SHARE_DENOMINATOR = 10_000
"""The largest block a carved share may need (11.11% = 1111/10000; 1/9 needs 9)."""
VAL_FROM_TRAIN = "--val-from-train"


def parse_share(text: str) -> tuple[int, int]:
    """`"1/9"`, `"0.1"` or `"11.11%"` -> the `(kept, carved)` weights of a stratified split
    whose carved part is exactly that share of the rows, e.g. (8, 1) for 1/9."""
    written = text.strip()
    percent = written.endswith("%")
    try:
        share = Fraction(written[:-1] if percent else written)
    except (ValueError, ZeroDivisionError):
        raise NASRecError(f"{VAL_FROM_TRAIN}: expected a fraction like 1/9 or 0.1, or a "
                          f"percentage like 11.11%, got '{text}'") from None
    share = share / 100 if percent else share
    if not 0 < share < 1:
        bounds = "0% and 100%" if percent else "0 and 1 (a percentage ends with %, e.g. 11.11%)"
        raise NASRecError(f"{VAL_FROM_TRAIN}: '{text}' must lie strictly between {bounds}")
    if share.denominator > MAX_SHARE_DENOMINATOR:
        raise NASRecError(f"{VAL_FROM_TRAIN}: '{text}' is {share}, whose denominator is over "
                          f"{MAX_SHARE_DENOMINATOR:,}; write a simpler share such as 1/9")
    return share.denominator - share.numerator, share.numerator


def carve_weights(text: str, split_mode: str, given_names: tuple[str, ...]) -> tuple[int, int]:
    """The `(kept, carved)` weights of `--val-from-train text` (`parse_share`), refused unless
    the split is "given" with a train input and no val input."""
    if split_mode != "given":
        raise NASRecError(f"{VAL_FROM_TRAIN}: carves val out of a given train input; use it "
                          f"with --split given (e.g. --input train=a.csv test=b.csv), not "
                          f"--split {split_mode}")
    if "train" not in given_names:
        raise NASRecError(f"{VAL_FROM_TRAIN}: no train input to carve val from (give "
                          "--input train=PATH)")
    if "val" in given_names:
        raise NASRecError(f"{VAL_FROM_TRAIN}: a val input is given too; val comes either from "
                          "its own input or from the train input, not both")
    return parse_share(text)


class StratifiedSplitter:
    """Assigns each row of a label stream to a split index, as described in the module doc.

    Args:
        weights: relative split sizes, e.g. (80, 10, 10).
        seed: the seed of the block permutations.
    """

    def __init__(self, weights: tuple[int, ...], seed: int) -> None:
        divisor = reduce(gcd, [w for w in weights if w] or [1])
        self.pattern = np.repeat(np.arange(len(weights), dtype=np.int8),
                                 [w // divisor for w in weights])
        self.block = len(self.pattern)
        self.seed = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        self.seen = np.zeros(2, dtype=np.int64)

    def assign(self, labels: np.ndarray) -> np.ndarray:
        """Split index `[n]` int8 of the next `len(labels)` rows of the stream."""
        labels = np.asarray(labels).astype(np.int64)
        splits = np.empty(labels.size, dtype=np.int8)
        for label in (0, 1):
            rows = np.flatnonzero(labels == label)
            rank = self.seen[label] + np.arange(rows.size, dtype=np.int64)
            self.seen[label] += rows.size
            if not rows.size:
                continue
            block, position = rank // self.block, rank % self.block
            blocks = np.unique(block)
            label_salt = splitmix64(np.array([self.seed ^ np.uint64(label + 1)]))
            salt = splitmix64(label_salt ^ blocks.astype(np.uint64))
            scores = splitmix64(salt[:, None] ^ np.arange(self.block, dtype=np.uint64)[None, :])
            permutations = np.argsort(scores, axis=1)
            which = np.searchsorted(blocks, block)
            splits[rows] = self.pattern[permutations[which, position]]
        return splits
