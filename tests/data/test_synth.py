"""The synthetic generator: shapes, determinism, raw round trip, a learnable interaction signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import optimize, sparse, special

from nasrec_torchrec.cli import main
from nasrec_torchrec.data.schema import Schema
from nasrec_torchrec.data.synth import write_synthetic
from nasrec_torchrec.data.synthetic import SHAPES, SyntheticGenerator


@pytest.mark.parametrize("like, dense, sparse", [("criteo", 13, 26), ("avazu", 0, 22),
                                                 ("kdd", 3, 10)])
def test_shapes_and_oracle_stats(tmp_path: Path, like: str, dense: int, sparse: int) -> None:
    output = tmp_path / like
    assert main(["synth", "--like", like, "--rows", "2000", "--output", str(output)]) == 0
    schema = Schema.load(str(output))
    assert (len(schema.dense), len(schema.sparse)) == (dense, sparse)
    assert sum(schema.splits.values()) == 2000
    stats = json.loads((output / "stats.json").read_text())
    rate = SHAPES[like].positive_rate
    for split in ("train", "val", "test"):
        assert 0 < stats["splits"][split]["oracle_log_loss"] < 0.7
        assert abs(stats["splits"][split]["positive_rate"] - rate) < 0.06


def test_generation_is_seeded() -> None:
    def first_chunk(seed: int) -> np.ndarray:
        return next(SyntheticGenerator(SHAPES["criteo"], seed).raw_chunks(500)).keys

    assert np.array_equal(first_chunk(3), first_chunk(3))
    assert not np.array_equal(first_chunk(3), first_chunk(4))


@pytest.mark.parametrize("like", ["criteo", "avazu", "kdd"])
def test_prepared_synth_equals_prepare_of_raw_synth(tmp_path: Path, like: str) -> None:
    write_synthetic(like, 3000, str(tmp_path / "direct"), seed=2)
    write_synthetic(like, 3000, str(tmp_path / "raw"), seed=2, raw=True)
    files = {"criteo": ["train.txt"], "avazu": ["train.csv"], "kdd": ["training.txt"]}[like]
    extra = (["--kdd-user-profile", str(tmp_path / "raw" / "userid_profile.txt")]
             if like == "kdd" else [])
    assert main(["prepare", "--format", like, "--input", *(str(tmp_path / "raw" / f)
                                                          for f in files),
                 "--seed", "2", "--output", str(tmp_path / "prepared"), *extra]) == 0
    for split in ("train", "val", "test"):
        assert pq.read_table(str(tmp_path / "direct" / split)).equals(
            pq.read_table(str(tmp_path / "prepared" / split)))


def _fit(columns: list[tuple[np.ndarray, np.ndarray | None, int]], labels: np.ndarray,
         train: np.ndarray) -> np.ndarray:
    """L2-regularized logistic regression on a sparse design of indexed (scaled) columns."""
    offsets = np.cumsum([0] + [size for _, _, size in columns])
    n = len(labels)
    design = sparse.csr_matrix((
        np.concatenate([s if s is not None else np.ones(n) for _, s, _ in columns]),
        (np.tile(np.arange(n), len(columns)),
         np.concatenate([c + o for (c, _, _), o in zip(columns, offsets)])),
    ), shape=(n, int(offsets[-1])))
    design = sparse.hstack([design, np.ones((n, 1))]).tocsr()
    fit_x, fit_y = design[train], labels[train]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = fit_x @ w
        p = special.expit(z)
        value = np.logaddexp(0, z).sum() - fit_y @ z + (w[:-1] ** 2).sum()
        gradient = fit_x.T @ (p - fit_y) + 2 * np.append(w[:-1], 0.0)
        return value, gradient

    w = optimize.minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B",
                          options={"maxiter": 80}).x
    return design @ w


def test_interactions_beat_a_linear_model(tmp_path: Path) -> None:
    rows = 20_000
    output = tmp_path / "criteo"
    write_synthetic("criteo", rows, str(output), seed=0)
    generator = SyntheticGenerator(SHAPES["criteo"], 0)
    schema = Schema.load(str(output))
    tables = {split: pq.read_table(str(output / split)) for split in ("train", "val")}
    n = tables["train"].num_rows + tables["val"].num_rows
    train = np.arange(n) < tables["train"].num_rows

    def column(name: str) -> np.ndarray:
        return np.concatenate([tables[s][name].to_numpy() for s in ("train", "val")])

    labels = column("label").astype(np.float64)
    cap = 100
    ids = {name: np.minimum(column(name), cap - 1) for name in schema.sparse_names}
    dense = {name: column(name).astype(np.float64) for name in schema.dense}
    linear = [(ids[name], None, cap) for name in schema.sparse_names]
    linear += [(np.zeros(n, dtype=np.int64), dense[name], 1) for name in schema.dense]
    crosses = []
    for a, b in generator.sparse_pairs:
        first, second = ids[schema.sparse_names[a]], ids[schema.sparse_names[b]]
        width = int(second.max()) + 1
        crosses.append((first * width + second, None, (int(first.max()) + 1) * width))
    for j, k in generator.dense_pairs:
        crosses.append((ids[schema.sparse_names[k]], dense[schema.dense[j]], cap))

    def val_loss(logits: np.ndarray) -> float:
        z, y = logits[~train], labels[~train]
        return float(np.mean(np.logaddexp(0, z) - y * z))

    linear_loss = val_loss(_fit(linear, labels, train))
    interaction_loss = val_loss(_fit(linear + crosses, labels, train))
    oracle = json.loads((output / "stats.json").read_text())["splits"]["val"]["oracle_log_loss"]
    assert interaction_loss < linear_loss - 0.02
    assert oracle < interaction_loss
