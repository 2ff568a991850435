"""Write a synthetic dataset: prepared (like `prepare` writes) or as raw files."""

from __future__ import annotations

import os
from typing import Iterator

from nasrec_torchrec.artifacts import write_json
from nasrec_torchrec.data.fields import RawChunk
from nasrec_torchrec.data.output_dir import atomic_directory
from nasrec_torchrec.data.prepare import ChunkSource, SplitPlan, prepare_source
from nasrec_torchrec.data.synthetic import DEFAULT_MAX_CARDINALITY, SHAPES, SyntheticGenerator
from nasrec_torchrec.data.synthetic_raw import write_raw
from nasrec_torchrec.errors import NASRecError


def synthetic_source(generator: SyntheticGenerator, rows: int) -> ChunkSource:
    """The generator's rows as a `prepare` source."""
    def stream(only: str | None) -> Iterator[tuple[str | None, RawChunk]]:
        for chunk in generator.raw_chunks(rows):
            yield None, chunk

    shape = generator.shape
    return ChunkSource("synthetic", list(shape.dense), list(shape.sparse), stream)


def write_synthetic(like: str, rows: int, output: str, *, seed: int = 0,
                    max_cardinality: int = DEFAULT_MAX_CARDINALITY, raw: bool = False,
                    split: str = "80,10,10", overwrite: bool = False,
                    row_group_rows: int = 65_536) -> dict:
    """Generate `rows` rows shaped like `like` into `output`; returns the stats.

    Args:
        like: criteo, avazu or kdd.
        rows: number of rows.
        output: the directory to create.
        seed: generator (and split) seed.
        max_cardinality: cap on each feature's distinct ids.
        raw: write the raw text format (for `nasrec prepare`) instead of a prepared dataset.
        split: the split of a prepared dataset ("80,10,10" stratified).
        overwrite: replace an existing output.
        row_group_rows: Parquet row group size of a prepared dataset.
    """
    if like not in SHAPES:
        raise NASRecError(f"--like: unknown shape '{like}' (known: {', '.join(SHAPES)})")
    if rows <= 0:
        raise NASRecError(f"--rows: must be positive, got {rows}")
    generator = SyntheticGenerator(SHAPES[like], seed, max_cardinality)
    provenance = {"like": like, "rows": rows, "seed": seed, "max_cardinality": max_cardinality}
    if not raw:
        return prepare_source(synthetic_source(generator, rows), output,
                              SplitPlan.parse(split, seed), overwrite=overwrite,
                              row_group_rows=row_group_rows, extra={"synthetic": provenance})
    with atomic_directory(output, overwrite) as directory:
        files = write_raw(generator, rows, directory)
        stats = {**provenance, "format": like,
                 "files": [os.path.join(os.path.abspath(output), os.path.basename(f))
                           for f in files]}
        write_json(os.path.join(directory, "synthetic.json"), stats)
    return stats
