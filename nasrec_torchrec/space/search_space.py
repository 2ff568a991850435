"""The choices a NASRec search space offers, its presets, and its exact size."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from math import comb, prod
from pathlib import Path
from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.operators import DENSE, SPARSE, branch_operators

# The operators of the paper's and the official release's spaces (spelled out: an operator
# added to the table later joins no preset, so the presets' results never change).
FULL_DENSE_OPS: tuple[str, ...] = ("fc", "gating", "sum", "dot_product")
FULL_SPARSE_OPS: tuple[str, ...] = ("embed_fc", "attention")
SMALL_DENSE_OPS: tuple[str, ...] = ("fc", "dot_product")
SMALL_SPARSE_OPS: tuple[str, ...] = ("embed_fc",)
# The operators the "-plus" presets add to the paper's: DeepFM's FM, DCNv2's Cross, and the
# FC over the flattened embeddings both feed their deep part with.
PLUS_DENSE_OPS: tuple[str, ...] = ("fm", "cross", "flat_fc")
PAPER_DENSE_DIMS: tuple[int, ...] = (32, 64, 128, 256, 512)
PAPER_SPARSE_DIMS: tuple[int, ...] = (16, 32, 64)
OFFICIAL_DENSE_DIMS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 768, 1024)
OFFICIAL_SPARSE_DIMS: tuple[int, ...] = (16, 32, 48, 64)


@dataclass(frozen=True)
class SearchSpace:
    """Which choices every block of an architecture may take.

    Args:
        name: the space's name (presets: see `SPACES`).
        num_blocks: number of choice blocks N.
        dense_ops: the dense operators a block may use (dense names of the operator table
            `space.operators.OPERATORS`).
        sparse_ops: the sparse operators a block may use (its sparse names).
        dense_dims: the dense output widths (stored ascending).
        sparse_dims: the sparse branch output rows (stored ascending).
        project_concat_searchable: whether a block may turn Project-Concat on.
        project_concat_rows: the embedding rows a Project-Concat adds.
        fm_searchable: whether a block may turn the FM operator on.
        max_connections: at most this many dense sources and this many sparse sources per
            block; `None` means any number.

    Example::

        space = get_space("nasrec-small")
        space.size()  # exact number of architectures, a Python int
    """

    name: str
    num_blocks: int
    dense_ops: tuple[str, ...]
    sparse_ops: tuple[str, ...]
    dense_dims: tuple[int, ...]
    sparse_dims: tuple[int, ...]
    project_concat_searchable: bool = True
    project_concat_rows: int = 1
    fm_searchable: bool = False
    max_connections: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise NASRecError(f"field 'name': {self.name!r} is not a non-empty string")
        _check_int(self.num_blocks, "num_blocks", minimum=1)
        object.__setattr__(self, "dense_ops",
                           _check_ops(self.dense_ops, branch_operators(DENSE), "dense_ops"))
        object.__setattr__(self, "sparse_ops",
                           _check_ops(self.sparse_ops, branch_operators(SPARSE), "sparse_ops"))
        object.__setattr__(self, "dense_dims", _check_dims(self.dense_dims, "dense_dims"))
        object.__setattr__(self, "sparse_dims", _check_dims(self.sparse_dims, "sparse_dims"))
        _check_bool(self.project_concat_searchable, "project_concat_searchable")
        _check_int(self.project_concat_rows, "project_concat_rows", minimum=1)
        _check_bool(self.fm_searchable, "fm_searchable")
        if self.max_connections is not None:
            _check_int(self.max_connections, "max_connections", minimum=1)

    def connection_limit(self, block: int) -> int:
        """The largest number of sources block `block` (1-based) may read per input kind."""
        return block if self.max_connections is None else min(block, self.max_connections)

    def num_source_sets(self, block: int) -> int:
        """How many source subsets (non-empty, within `max_connections`) block `block` has."""
        return sum(comb(block, k) for k in range(1, self.connection_limit(block) + 1))

    def size(self, single_operator: bool = False) -> int:
        """The exact number of architectures (distinct valid genotypes) of this space.

        Per block b: source subsets for dense and for sparse inputs, b × b (left, right)
        pairs, non-empty operator subsets per branch (one operator per branch when
        `single_operator`), dims, and the Project-Concat and FM flags when searchable.
        """
        dense_choices = len(self.dense_ops) if single_operator else 2 ** len(self.dense_ops) - 1
        sparse_choices = len(self.sparse_ops) if single_operator else 2 ** len(self.sparse_ops) - 1
        per_block_fixed = (
            dense_choices * sparse_choices * len(self.dense_dims) * len(self.sparse_dims)
            * (2 if self.project_concat_searchable else 1) * (2 if self.fm_searchable else 1)
        )
        return prod(
            self.num_source_sets(b) ** 2 * b * b * per_block_fixed
            for b in range(1, self.num_blocks + 1)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-ready dict that `from_dict` reads back."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "search space") -> "SearchSpace":
        """Build a space from a dict; unknown or bad fields raise `NASRecError` naming `source`."""
        if not isinstance(data, dict):
            raise NASRecError(f"{source}: expected a mapping of search-space fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NASRecError(f"{source}: field '{unknown[0]}': unknown field; expected one of {sorted(known)}")
        required = ("name", "num_blocks", "dense_ops", "sparse_ops", "dense_dims", "sparse_dims")
        missing = [name for name in required if name not in data]
        if missing:
            raise NASRecError(f"{source}: field '{missing[0]}': missing")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**values)
        except NASRecError as error:
            raise NASRecError(f"{source}: {error}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> "SearchSpace":
        """Load a space from a `.json`, `.yaml` or `.yml` file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise NASRecError(f"{path}: cannot read: {error.strerror}") from None
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
                raise NASRecError(f"{where}: invalid YAML: {error}") from None
        else:
            raise NASRecError(f"{path}: unknown search-space file type (use .json, .yaml or .yml)")
        return cls.from_dict(data, source=str(path))


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise NASRecError(f"field '{name}': {value!r} is not an integer >= {minimum}")


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise NASRecError(f"field '{name}': {value!r} is not true or false")


def _check_ops(ops: Any, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if isinstance(ops, str) or not isinstance(ops, (tuple, list)) or not ops:
        raise NASRecError(f"field '{name}': {ops!r} is not a non-empty list of operators")
    for op in ops:
        if op not in allowed:
            raise NASRecError(f"field '{name}': {op!r} is not one of {list(allowed)}")
    if len(set(ops)) != len(ops):
        raise NASRecError(f"field '{name}': {list(ops)} lists an operator twice")
    return tuple(op for op in allowed if op in ops)


def _check_dims(dims: Any, name: str) -> tuple[int, ...]:
    if not isinstance(dims, (tuple, list)) or not dims:
        raise NASRecError(f"field '{name}': {dims!r} is not a non-empty list of integers")
    for dim in dims:
        _check_int(dim, name, minimum=1)
    if len(set(dims)) != len(dims):
        raise NASRecError(f"field '{name}': {list(dims)} lists a dimension twice")
    return tuple(sorted(dims))


# The preset spaces by name: the paper's two, the official release's two, and the paper's two
# plus FM and Cross.
SPACES: dict[str, SearchSpace] = {
    space.name: space
    for space in (
        SearchSpace(
            name="nasrec-small", num_blocks=7,
            dense_ops=SMALL_DENSE_OPS, sparse_ops=SMALL_SPARSE_OPS,
            dense_dims=PAPER_DENSE_DIMS, sparse_dims=PAPER_SPARSE_DIMS,
            project_concat_searchable=True, project_concat_rows=1,
            fm_searchable=False, max_connections=None,
        ),
        SearchSpace(
            name="nasrec-full", num_blocks=7,
            dense_ops=FULL_DENSE_OPS, sparse_ops=FULL_SPARSE_OPS,
            dense_dims=PAPER_DENSE_DIMS, sparse_dims=PAPER_SPARSE_DIMS,
            project_concat_searchable=True, project_concat_rows=1,
            fm_searchable=False, max_connections=None,
        ),
        SearchSpace(
            name="official-small", num_blocks=7,
            dense_ops=SMALL_DENSE_OPS, sparse_ops=SMALL_SPARSE_OPS,
            dense_dims=OFFICIAL_DENSE_DIMS, sparse_dims=OFFICIAL_SPARSE_DIMS,
            project_concat_searchable=True, project_concat_rows=8,
            fm_searchable=True, max_connections=4,
        ),
        SearchSpace(
            name="official-full", num_blocks=7,
            dense_ops=FULL_DENSE_OPS, sparse_ops=FULL_SPARSE_OPS,
            dense_dims=OFFICIAL_DENSE_DIMS, sparse_dims=OFFICIAL_SPARSE_DIMS,
            project_concat_searchable=True, project_concat_rows=8,
            fm_searchable=True, max_connections=4,
        ),
        SearchSpace(
            name="nasrec-small-plus", num_blocks=7,
            dense_ops=SMALL_DENSE_OPS + PLUS_DENSE_OPS, sparse_ops=SMALL_SPARSE_OPS,
            dense_dims=PAPER_DENSE_DIMS, sparse_dims=PAPER_SPARSE_DIMS,
            project_concat_searchable=True, project_concat_rows=1,
            fm_searchable=False, max_connections=None,
        ),
        SearchSpace(
            name="nasrec-full-plus", num_blocks=7,
            dense_ops=FULL_DENSE_OPS + PLUS_DENSE_OPS, sparse_ops=FULL_SPARSE_OPS,
            dense_dims=PAPER_DENSE_DIMS, sparse_dims=PAPER_SPARSE_DIMS,
            project_concat_searchable=True, project_concat_rows=1,
            fm_searchable=False, max_connections=None,
        ),
    )
}


def get_space(name: str) -> SearchSpace:
    """The preset space called `name`; raises `NASRecError` listing the presets otherwise."""
    try:
        return SPACES[name]
    except KeyError:
        raise NASRecError(f"unknown search space {name!r}; presets: {sorted(SPACES)}") from None


def load_space(name_or_file: str) -> SearchSpace:
    """A preset by name, or a space file (`.yaml`, `.yml`, `.json`, e.g. `specs/spaces/`)."""
    if name_or_file in SPACES:
        return SPACES[name_or_file]
    if Path(name_or_file).suffix in (".yaml", ".yml", ".json"):
        return SearchSpace.from_file(name_or_file)
    raise NASRecError(f"unknown search space {name_or_file!r}: neither a preset "
                      f"({', '.join(sorted(SPACES))}) nor a .yaml/.json space file")
