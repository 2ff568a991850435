"""An architecture of the NASRec search space: an immutable, hashable, JSON-round-tripping value.

Blocks are numbered 1..N. A source index names where an input comes from: 0 = the raw
inputs (dense features and the stacked feature embeddings), k = the output of block k < b.
The semantics of every gene are in docs/search_space.md.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Iterable

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.operators import (DENSE, DENSE_CONCAT, DENSE_PAIR, SPARSE,
                                             SPARSE_CONCAT, branch_operators, inputs_read)

if TYPE_CHECKING:
    from nasrec_torchrec.space.search_space import SearchSpace


@dataclass(frozen=True)
class Block:
    """The choices of one choice block.

    Args:
        dense_sources: sources whose dense outputs are concatenated (sorted, no duplicates):
            the dense concat that operators reading `DENSE_CONCAT` take (FC, Dot-Product).
        sparse_sources: sources whose sparse outputs are concatenated along rows: the input
            of operators reading `SPARSE_CONCAT` (EmbedFC, Self-Attention, Dot-Product).
        dense_left: the source of X1 of operators reading `DENSE_PAIR` (Gating
            `sigmoid(FC(X1)) * X2`, Sum `X1 + X2`).
        dense_right: the source of X2 of operators reading `DENSE_PAIR`.
        dense_ops: the active dense operators (their outputs are added; names of
            `space.operators.OPERATORS`).
        sparse_ops: the active sparse operators (their outputs are added).
        dense_dim: width of the dense output.
        sparse_dim: rows of the sparse branch output.
        project_concat: whether the dense output, projected to rows, joins the sparse output.
        fm: whether the FM interaction of the sparse branch output is added to the dense output.
    """

    dense_sources: tuple[int, ...]
    sparse_sources: tuple[int, ...]
    dense_left: int
    dense_right: int
    dense_ops: tuple[str, ...]
    sparse_ops: tuple[str, ...]
    dense_dim: int
    sparse_dim: int
    project_concat: bool = False
    fm: bool = False

    def __post_init__(self) -> None:
        # Canonical order makes equal choices compare and hash equal.
        object.__setattr__(self, "dense_sources", tuple(sorted(set(self.dense_sources))))
        object.__setattr__(self, "sparse_sources", tuple(sorted(set(self.sparse_sources))))
        object.__setattr__(self, "dense_ops", _ordered(self.dense_ops, branch_operators(DENSE)))
        object.__setattr__(self, "sparse_ops", _ordered(self.sparse_ops, branch_operators(SPARSE)))

    def inputs_read(self, dense: bool = True, sparse: bool = True) -> frozenset[str]:
        """The block inputs (`space.operators.INPUTS`) its operators read: those of the dense
        branch when `dense`, of the sparse branch when `sparse`.

        An operator name missing from the table raises `NASRecError` naming it.
        """
        return inputs_read((self.dense_ops if dense else ()) + (self.sparse_ops if sparse else ()))


def _ordered(ops: Iterable[str], order: tuple[str, ...]) -> tuple[str, ...]:
    chosen = set(ops)
    known = tuple(op for op in order if op in chosen)
    return known + tuple(sorted(chosen - set(order)))  # unknown names kept for validate()


DEAD_BLOCK = Block(dense_sources=(), sparse_sources=(), dense_left=0, dense_right=0,
                   dense_ops=(), sparse_ops=(), dense_dim=0, sparse_dim=0)


@dataclass(frozen=True)
class Liveness:
    """Which parts of each block reach the logit (index b-1 for block b).

    `dense[b]`: the dense output is used; `sparse_branch[b]`: the sparse operators run;
    `sparse_output[b]`: the sparse output (branch rows + Project-Concat rows) is used.
    """

    dense: tuple[bool, ...]
    sparse_branch: tuple[bool, ...]
    sparse_output: tuple[bool, ...]

    def block_live(self, block: int) -> bool:
        """True when block `block` (1-based) contributes to the logit."""
        index = block - 1
        return self.dense[index] or self.sparse_branch[index] or self.sparse_output[index]


@dataclass(frozen=True)
class Architecture:
    """A stack of choice blocks followed by a final FC on the last block's outputs.

    The final FC reads the last block's dense output and its flattened sparse output, as the
    official implementation's does.

    Args:
        blocks: the choices of blocks 1..N.
        project_concat_rows: embedding rows a Project-Concat adds (paper spaces 1, official 8).
    """

    blocks: tuple[Block, ...]
    project_concat_rows: int = 1
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "_hash", hash((self.blocks, self.project_concat_rows)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def num_blocks(self) -> int:
        """Number of choice blocks N."""
        return len(self.blocks)

    def block(self, index: int) -> Block:
        """Block `index` (1-based, like source indices)."""
        return self.blocks[index - 1]

    def liveness(self) -> Liveness:
        """Which outputs and branches of each block reach the logit (a backward pass over blocks)."""
        n = self.num_blocks
        dense = [False] * n
        sparse_output = [False] * n
        sparse_branch = [False] * n
        dense[n - 1] = True  # the final FC reads the last block's dense output
        sparse_output[n - 1] = True  # ... and its flattened sparse output
        for index in range(n, 0, -1):
            block = self.block(index)
            i = index - 1
            if sparse_output[i]:
                sparse_branch[i] = True
                if block.project_concat:
                    dense[i] = True
            if dense[i] and block.fm:
                sparse_branch[i] = True
            reads = block.inputs_read(dense[i], sparse_branch[i])
            reads_dense: set[int] = set()
            reads_sparse: set[int] = set()
            if DENSE_CONCAT in reads:
                reads_dense.update(block.dense_sources)
            if DENSE_PAIR in reads:
                reads_dense.update((block.dense_left, block.dense_right))
            if SPARSE_CONCAT in reads:
                reads_sparse.update(block.sparse_sources)
            for source in reads_dense:
                if source > 0:
                    dense[source - 1] = True
            for source in reads_sparse:
                if source > 0:
                    sparse_output[source - 1] = True
        return Liveness(tuple(dense), tuple(sparse_branch), tuple(sparse_output))

    def canonical(self) -> "Architecture":
        """The same function with every gene that nothing reads reset to a neutral value.

        Two architectures that compute the same function compare and hash equal after
        `canonical()`: unread sources become `()`, unread left/right `0`, unread operator sets
        `()`, unread dims `0`, unread Project-Concat / FM `False`, and a block that does not
        reach the logit becomes `DEAD_BLOCK`. The result is a key for identity (caches, dedup):
        models built from it equal those built from the original, but it does not `validate`.
        """
        live = self.liveness()
        blocks = []
        for index, block in enumerate(self.blocks, start=1):
            i = index - 1
            if not live.block_live(index):
                blocks.append(DEAD_BLOCK)
                continue
            changes: dict[str, Any] = {}
            dense_live = live.dense[i]
            reads = block.inputs_read(dense_live, live.sparse_branch[i])
            if DENSE_CONCAT not in reads:
                changes["dense_sources"] = ()
            if DENSE_PAIR not in reads:
                changes["dense_left"] = 0
                changes["dense_right"] = 0
            if SPARSE_CONCAT not in reads:
                changes["sparse_sources"] = ()
            if not live.sparse_branch[i]:
                changes["sparse_ops"] = ()
                changes["sparse_dim"] = 0
            if not live.sparse_output[i]:
                changes["project_concat"] = False
            if not dense_live:
                changes["dense_ops"] = ()
                changes["dense_dim"] = 0
                changes["fm"] = False
            blocks.append(replace(block, **changes))
        return replace(self, blocks=tuple(blocks))

    def validate(self, space: "SearchSpace") -> None:
        """Raise `NASRecError` naming the block and field of any gene `space` does not allow."""
        from nasrec_torchrec.space.validation import validate_architecture

        validate_architecture(self, space)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the project's own architecture format)."""
        return {
            "format": "nasrec_torchrec.architecture/1",
            "project_concat_rows": self.project_concat_rows,
            "blocks": [
                {f.name: (list(v) if isinstance(v := getattr(block, f.name), tuple) else v)
                 for f in fields(Block)}
                for block in self.blocks
            ],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to the project's JSON format."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "architecture") -> "Architecture":
        """Parse `to_dict()` output; faults raise `NASRecError` naming the block and field."""
        if not isinstance(data, dict) or not isinstance(data.get("blocks"), list):
            raise NASRecError(f"{source}: expected an object with a 'blocks' list")
        names = {f.name for f in fields(Block)}
        required = {f.name for f in fields(Block) if f.default is MISSING}
        blocks = []
        for number, raw in enumerate(data["blocks"], start=1):
            if not isinstance(raw, dict):
                raise NASRecError(f"{source}: block {number}: expected an object")
            unknown = set(raw) - names
            if unknown:
                raise NASRecError(f"{source}: block {number}: unknown field '{sorted(unknown)[0]}'")
            missing = required - set(raw)
            if missing:
                raise NASRecError(f"{source}: block {number}: missing field '{sorted(missing)[0]}'")
            for name, value in raw.items():
                wrong = _wrong_type(name, value)
                if wrong:
                    raise NASRecError(f"{source}: block {number}: field '{name}': {value!r} "
                                      f"is not {wrong}")
            blocks.append(Block(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in raw.items()}))
        rows = data.get("project_concat_rows", 1)
        if isinstance(rows, bool) or not isinstance(rows, int):
            raise NASRecError(f"{source}: field 'project_concat_rows': {rows!r} is not an "
                              "integer")
        return cls(blocks=tuple(blocks), project_concat_rows=rows)

    @classmethod
    def from_json(cls, text: str, source: str = "architecture") -> "Architecture":
        """Parse the project's JSON format."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise NASRecError(f"{source}: line {error.lineno}: invalid JSON: {error.msg}") from None
        return cls.from_dict(data, source)


_LIST_GENES = {"dense_sources": int, "sparse_sources": int, "dense_ops": str, "sparse_ops": str}
_FLAG_GENES = ("project_concat", "fm")


def _wrong_type(name: str, value: Any) -> str:
    """What a block's JSON gene `name` should be when `value` is not that ("" when it is)."""
    if name in _LIST_GENES:
        kind = _LIST_GENES[name]
        if not isinstance(value, list) or not all(
                isinstance(item, kind) and not isinstance(item, bool) for item in value):
            return "a list of " + ("block indices" if kind is int else "operator names")
        return ""
    if name in _FLAG_GENES:
        return "" if isinstance(value, bool) else "true or false"
    return "" if isinstance(value, int) and not isinstance(value, bool) else "an integer"
