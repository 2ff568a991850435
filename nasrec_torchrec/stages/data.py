"""Stages `prepare` (raw logs -> Parquet shards) and `synth` (a synthetic dataset).

`prepare(PrepareRun)` splits and encodes raw CTR logs into `{train,val,test}/part-*.parquet`,
`schema.json`, `stats.json` and `vocab/`; `synth(SynthRun)` writes a prepared dataset (or the
raw text format) with a planted signal. Both write their output only when complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from nasrec_torchrec.data.choices import FORMATS, ON_BAD_ROW
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.settings import check, option


@dataclass
class PrepareRun:
    """A `prepare` run (see the flags' help for each field)."""

    format: Optional[str] = option(None, "raw input format", choices=FORMATS)
    input: list[str] = option(default_factory=list, help="input files, read in order; with "
                              "--split given write SPLIT=PATH", metavar="PATH")
    output: str = option("", "prepared dataset directory", metavar="DIR")
    split: str = option("80,10,10", "train,val,test percentages of a stratified seeded "
                        "split; 'given' keeps each input's named split; 'none' puts all rows "
                        "in --split-name")
    split_name: str = option("train", "the split of all rows with --split none")
    val_from_train: Optional[str] = option(
        None, "with --split given: carve the val split out of the train input (its other "
        "rows stay train and alone build the vocabularies), stratified by label and seeded "
        "by --seed; SHARE of the train rows as a fraction (1/9: train:val = 8:1, 0.1) or a "
        "percentage (11.11%%); e.g. --input train=train.csv test=valid.csv",
        metavar="SHARE")
    seed: int = option(0, "seed of the split (and of --val-from-train)")
    min_frequency: int = option(1, "ids seen fewer times in train map to row 0", minimum=1)
    schema_from: Optional[str] = option(None, "reuse the vocabularies and transforms of an "
                                        "earlier prepare", metavar="DIR")
    on_bad_row: str = option("error", "stop at the first bad row or skip and count bad rows",
                             choices=ON_BAD_ROW)
    overwrite: bool = option(False, "replace an existing output")
    label_column: str = option("label", "csv/parquet label column")
    dense_columns: list[str] = option(default_factory=list, help="csv/parquet dense columns "
                                      "(comma- or space-separated; default none)",
                                      metavar="NAME")
    sparse_columns: Optional[list[str]] = option(None, "csv/parquet categorical columns "
                                                 "(default: all other columns)",
                                                 metavar="NAME")
    kdd_user_profile: Optional[str] = option(None, "KDD userid_profile.txt (UserID, Gender, "
                                             "Age) for gender and age", metavar="PATH")
    row_group_rows: int = option(65_536, "rows per Parquet row group", minimum=1)
    shard_rows: int = option(1 << 20, "rows per Parquet shard", minimum=1)


def _names(items: Optional[list[str]]) -> Optional[tuple[str, ...]]:
    if items is None:
        return None
    return tuple(name.strip() for item in items for name in item.split(",") if name.strip())


def prepare(run: PrepareRun, source: str = "prepare") -> dict[str, Any]:
    """Prepare the dataset of `run`; its `stats.json` content."""
    from nasrec_torchrec.data.formats import ReaderOptions
    from nasrec_torchrec.data.prepare import SplitPlan, file_source, parse_inputs, prepare_source

    check(run, source)
    for name, flag in (("format", "--format"), ("input", "--input"), ("output", "--output")):
        if not getattr(run, name):
            raise NASRecError(f"{source}: field '{name}' ({flag}): is required")
    if run.kdd_user_profile and run.format != "kdd":
        raise NASRecError(f"{source}: --kdd-user-profile applies to --format kdd only")
    inputs = parse_inputs(run.input, run.split)
    given = tuple(dict.fromkeys(name for name, _ in inputs if name is not None))
    plan = SplitPlan.parse(run.split, run.seed, run.split_name, given, run.val_from_train)
    options = ReaderOptions(
        on_bad_row=run.on_bad_row, label_column=run.label_column,
        dense_columns=_names(run.dense_columns) or (),
        sparse_columns=_names(run.sparse_columns), kdd_user_profile=run.kdd_user_profile,
    )
    reader = file_source(run.format, inputs, options)
    stats = prepare_source(reader, run.output, plan, min_frequency=run.min_frequency,
                           schema_from=run.schema_from, overwrite=run.overwrite,
                           row_group_rows=run.row_group_rows, shard_rows=run.shard_rows)
    stats["features"] = {"dense": len(reader.dense), "sparse": len(reader.sparse)}
    return stats


def synth_shapes() -> list[str]:
    """The synthetic dataset shapes (`data.synthetic.SHAPES`)."""
    from nasrec_torchrec.data.synthetic import SHAPES

    return list(SHAPES)


@dataclass
class SynthRun:
    """A `synth` run."""

    like: Optional[str] = option(None, "dataset shape", choices=synth_shapes)
    rows: int = option(0, "number of rows", minimum=0)
    output: str = option("", "directory to create", metavar="DIR")
    seed: int = option(0, "generator and split seed")
    max_cardinality: int = option(2_000_000, "cap on each feature's distinct ids", minimum=1)
    raw: bool = option(False, "write the raw text format instead of a prepared dataset")
    overwrite: bool = option(False, "replace an existing output")


def synth(run: SynthRun, source: str = "synth") -> dict[str, Any]:
    """Generate the dataset of `run`; its stats."""
    from nasrec_torchrec.data.synth import write_synthetic

    check(run, source)
    for name in ("like", "rows", "output"):
        if not getattr(run, name):
            raise NASRecError(f"{source}: field '{name}' (--{name}): is required")
    return write_synthetic(run.like, run.rows, run.output, seed=run.seed,
                           max_cardinality=run.max_cardinality, raw=run.raw,
                           overwrite=run.overwrite)
