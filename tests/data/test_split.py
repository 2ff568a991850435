"""The streaming stratified split."""

from __future__ import annotations

import numpy as np
import pytest

from nasrec_torchrec.data.split import (StratifiedSplitter, carve_weights, parse_share,
                                      parse_weights)
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


def test_a_carved_share_is_exact_weights_and_its_faults_are_refused() -> None:
    assert parse_share("1/9") == (8, 1)
    assert parse_share("0.1") == (9, 1)
    assert parse_share("11.11%") == (8889, 1111)
    assert parse_share("25%") == (3, 1)
    for text, message in (("0", "strictly between 0 and 1"), ("1", "strictly between 0 and 1"),
                          ("11.11", r"a percentage ends with %"), ("-0.1", "between 0 and 1"),
                          ("100%", "between 0% and 100%"), ("0%", "between 0% and 100%"),
                          ("a tenth", "expected a fraction like 1/9"),
                          ("1/0", "expected a fraction"),
                          ("0.123456789", "denominator is over 10,000")):
        with pytest.raises(NASRecError, match=f"--val-from-train: .*{message}"):
            parse_share(text)


def test_val_is_carved_only_from_a_given_train_input_without_a_given_val() -> None:
    assert carve_weights("1/9", "given", ("train", "test")) == (8, 1)
    with pytest.raises(NASRecError, match="use it with --split given .* not --split 80,10,10"):
        carve_weights("1/9", "80,10,10", ())
    with pytest.raises(NASRecError, match="no train input to carve val from"):
        carve_weights("1/9", "given", ("test",))
    with pytest.raises(NASRecError, match="a val input is given too"):
        carve_weights("1/9", "given", ("train", "val"))


def test_a_one_in_nine_carve_takes_one_row_of_each_label_per_block_of_nine() -> None:
    y = np.array([1, 0, 0] * 27, dtype=np.int8)  # 27 positives, 54 negatives
    splits = StratifiedSplitter(parse_share("1/9"), seed=0).assign(y)
    assert int(((splits == 1) & (y == 1)).sum()) == 3 and int(((splits == 1) & (y == 0)).sum()) == 6
    for label in (0, 1):  # exactly one carved row in each block of 9 rows of a label
        carved = splits[y == label].reshape(-1, 9)
        assert (carved.sum(axis=1) == 1).all()
