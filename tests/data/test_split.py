"""The streaming stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from nasrec_torchrec.data.split import StratifiedSplitter, parse_weights
from nasrec_torchrec.errors import NASRecError


def labels(n: int, rate: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(np.int8)


def test_split_sizes_and_positive_rates_match_within_one_block() -> None:
    y = labels(50_001, 0.23)
    splits = StratifiedSplitter((80, 10, 10), seed=3).assign(y)
    for index, share in enumerate((0.8, 0.1, 0.1)):
        for label in (0, 1):
            count = int(((splits == index) & (y == label)).sum())
            assert abs(count - share * (y == label).sum()) <= 10
        assert abs(y[splits == index].mean() - y.mean()) < 1e-3


def test_assignment_does_not_depend_on_chunking_and_follows_the_seed() -> None:
    y = labels(10_000, 0.3)
    whole = StratifiedSplitter((70, 20, 10), seed=1).assign(y)
    splitter = StratifiedSplitter((70, 20, 10), seed=1)
    pieces = np.concatenate([splitter.assign(part) for part in np.array_split(y, [1, 77, 5000])])
    np.testing.assert_array_equal(whole, pieces)
    other = StratifiedSplitter((70, 20, 10), seed=2).assign(y)
    assert (other != whole).mean() > 0.1


def test_split_weights_are_validated() -> None:
    assert parse_weights("80,10,10") == (80, 10, 10)
    with pytest.raises(NASRecError, match="--split"):
        parse_weights("80,20")
    with pytest.raises(NASRecError, match=r"--split: the train,val,test percentages '50,50,50' "
                       r"sum to 150, not 100"):
        parse_weights("50,50,50")
    assert parse_weights("100,0,0") == (100, 0, 0)
