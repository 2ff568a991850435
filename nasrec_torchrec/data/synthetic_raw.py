"""The synthetic generator's rows printed in the raw formats `prepare` reads.

criteo: `train.txt` (TSV, no header); avazu: `train.csv` (header, `id` = row number);
kdd: `training.txt` (Click <= Impression, Click > 0 for a positive) and `userid_profile.txt`.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tqdm import tqdm

from nasrec_torchrec.data.formats import AVAZU_COLUMNS, KDD_COLUMNS, KDD_PROFILE, KDD_SPARSE
from nasrec_torchrec.data.synthetic import SyntheticGenerator, SyntheticRows

RAW_FILES = {"criteo": "train.txt", "avazu": "train.csv", "kdd": "training.txt"}
KDD_PROFILE_FILE = "userid_profile.txt"


def _integers(values: np.ndarray) -> pa.Array:
    """Integers as decimal strings, NaN -> null (printed empty)."""
    missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), bool)
    integers = pa.array(np.nan_to_num(values).astype(np.int64), mask=missing)
    return pc.cast(integers, pa.string())


def _table(generator: SyntheticGenerator, chunk: SyntheticRows, first_row: int,
           rng: np.random.Generator) -> pa.Table:
    shape = generator.shape
    sparse = {name: generator.tokens(chunk.ranks[:, k], k) for k, name in enumerate(shape.sparse)}
    dense = {name: _integers(chunk.dense[:, j]) for j, name in enumerate(shape.dense)}
    if shape.name == "criteo":
        columns = {"label": _integers(chunk.labels), **dense, **sparse}
    elif shape.name == "avazu":
        ids = np.arange(first_row, first_row + len(chunk.labels))
        columns = {"id": _integers(ids), "click": _integers(chunk.labels), **sparse}
        columns = {name: columns[name] for name in AVAZU_COLUMNS}
    else:
        impressions = chunk.dense[:, 0].astype(np.int64)
        clicks = np.where(chunk.labels > 0, 1 + rng.binomial(impressions - 1, 0.1), 0)
        columns = {"Click": _integers(clicks), **dense, **sparse}
        columns = {name: columns[name] for name in KDD_COLUMNS}
    return pa.table(columns)


def write_raw(generator: SyntheticGenerator, rows: int, directory: str) -> list[str]:
    """Write `rows` rows in the generator's raw format into `directory`; returns the files."""
    shape = generator.shape
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, RAW_FILES[shape.name])
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none",
                                  delimiter="," if shape.name == "avazu" else "\t")
    users: list[np.ndarray] = []
    first_row = 0
    writer: pa_csv.CSVWriter | None = None
    with open(path, "wb") as sink, tqdm(total=rows, desc="write", unit=" rows",
                                        unit_scale=True, leave=False) as bar:
        if shape.name == "avazu":
            sink.write((",".join(AVAZU_COLUMNS) + "\n").encode())
        for index, chunk in enumerate(generator.chunks(rows)):
            table = _table(generator, chunk, first_row,
                           np.random.default_rng([generator.seed, index, 7]))
            if writer is None:
                writer = pa_csv.CSVWriter(sink, table.schema, write_options=options)
            writer.write_table(table)
            if shape.name == "kdd":
                users.append(np.unique(chunk.ranks[:, KDD_SPARSE.index("UserID")]))
            first_row += table.num_rows
            bar.update(table.num_rows)
        if writer is not None:
            writer.close()
    if shape.name != "kdd":
        return [path]
    return [path, _write_profile_file(generator, np.unique(np.concatenate(users)), directory)]


def _write_profile_file(generator: SyntheticGenerator, user_ranks: np.ndarray,
                       directory: str) -> str:
    """`UserID\\tGender\\tAge` for every generated user that has a profile."""
    shape = generator.shape
    ranks = np.zeros((len(user_ranks), len(shape.sparse)), dtype=np.int64)
    ranks[:, shape.sparse.index("UserID")] = user_ranks
    ranks = generator.profile_ranks(ranks)
    known = ranks[:, -1] >= 0
    user = shape.sparse.index("UserID")
    table = pa.table({"UserID": generator.tokens(ranks[known, user], user),
                      **{name: generator.tokens(ranks[known, k], k)
                         for k, name in enumerate(shape.sparse) if name in KDD_PROFILE}})
    path = os.path.join(directory, KDD_PROFILE_FILE)
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(include_header=False, delimiter="\t",
                                                      quoting_style="none"))
    return path
