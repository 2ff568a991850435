"""Import and export of the official NASRec release's architecture JSON.

The format: `{"macro": [{"dense_idx", "sparse_idx", "dense_left_idx", "dense_right_idx"} × N],
"micro": [{"active_nodes", "dense_in_dims", "sparse_in_dims", "dense_sparse_interact",
"deep_fm"} × N], "num_blocks", "use_layernorm", "config"}`. Source index 0 is the raw inputs,
k is block k, as in our `Block`. `active_nodes` indexes the config's node table. The official
supernet masks a zero-padded concatenation of all earlier outputs in a fixed order, so the
order of `*_idx` lists carries no meaning; our `Block` stores them sorted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.space.architecture import Architecture, Block
from nasrec_torchrec.space.operators import DENSE, operator_spec
from nasrec_torchrec.space.search_space import get_space
from nasrec_torchrec.space.validation import validate_structure

# The node table of each official config, and the preset space it corresponds to.
OFFICIAL_NODES: dict[str, tuple[str, ...]] = {
    "xlarge": ("fc", "dot_product", "gating", "sum", "attention", "embed_fc"),
    "autoctr": ("fc", "dot_product", "embed_fc"),
}
OFFICIAL_SPACES: dict[str, str] = {"xlarge": "official-full", "autoctr": "official-small"}
OFFICIAL_PROJECT_CONCAT_ROWS = 8

_MACRO_FIELDS = ("dense_idx", "sparse_idx", "dense_left_idx", "dense_right_idx")
_MICRO_FIELDS = ("active_nodes", "dense_in_dims", "sparse_in_dims", "dense_sparse_interact", "deep_fm")


def from_official(data: dict[str, Any], source: str = "official architecture") -> tuple[Architecture, str]:
    """Parse an official architecture dict into `(architecture, space_name)`.

    `space_name` is `official-full` for config `xlarge` and `official-small` for `autoctr`.
    Structural faults raise `NASRecError` naming the block and field; whether the genes fit
    the space is left to `architecture.validate(get_space(space_name))`.
    """
    if not isinstance(data, dict):
        raise NASRecError(f"{source}: expected a JSON object")
    for key in ("macro", "micro", "config"):
        if key not in data:
            raise NASRecError(f"{source}: field '{key}': missing")
    config = data["config"]
    if config not in OFFICIAL_NODES:
        raise NASRecError(f"{source}: field 'config': {config!r} is not one of {list(OFFICIAL_NODES)}")
    macro, micro = data["macro"], data["micro"]
    if not isinstance(macro, list) or not isinstance(micro, list) or len(macro) != len(micro):
        raise NASRecError(f"{source}: fields 'macro' and 'micro': expected two lists of equal length")
    if "num_blocks" in data and data["num_blocks"] != len(macro):
        raise NASRecError(f"{source}: field 'num_blocks': {data['num_blocks']!r} != {len(macro)} blocks")
    nodes = OFFICIAL_NODES[config]
    blocks = tuple(_block_from_official(number, wiring, choices, nodes, source)
                   for number, (wiring, choices) in enumerate(zip(macro, micro), start=1))
    architecture = Architecture(blocks=blocks, project_concat_rows=OFFICIAL_PROJECT_CONCAT_ROWS)
    return architecture, OFFICIAL_SPACES[config]


def load_official(path: str | Path) -> tuple[Architecture, str]:
    """Read an official architecture JSON file; see `from_official`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise NASRecError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
    return from_official(data, source=str(path))


def to_official(architecture: Architecture, config: str, use_layernorm: bool = True) -> dict[str, Any]:
    """The official JSON dict of `architecture` under `config` (`xlarge` or `autoctr`).

    Raises `NASRecError` naming the block and field of a gene the format cannot express
    (an operator missing from the config's node table, or Project-Concat rows other than 8).
    """
    if config not in OFFICIAL_NODES:
        raise NASRecError(f"field 'config': {config!r} is not one of {list(OFFICIAL_NODES)}")
    if architecture.project_concat_rows != OFFICIAL_PROJECT_CONCAT_ROWS:
        raise NASRecError(f"field 'project_concat_rows': {architecture.project_concat_rows} rows; "
                          f"the official format has {OFFICIAL_PROJECT_CONCAT_ROWS}")
    nodes = OFFICIAL_NODES[config]
    macro, micro = [], []
    for number, block in enumerate(architecture.blocks, start=1):
        active = []
        for field in ("dense_ops", "sparse_ops"):
            for op in getattr(block, field):
                if op not in nodes:
                    raise NASRecError(f"block {number}: field '{field}': {op!r} has no node in "
                                      f"config '{config}' ({list(nodes)})")
                active.append(nodes.index(op))
        macro.append({
            "dense_idx": list(block.dense_sources),
            "sparse_idx": list(block.sparse_sources),
            "dense_left_idx": [block.dense_left],
            "dense_right_idx": [block.dense_right],
        })
        micro.append({
            "active_nodes": active,
            "dense_in_dims": block.dense_dim,
            "sparse_in_dims": block.sparse_dim,
            "dense_sparse_interact": int(block.project_concat),
            "deep_fm": int(block.fm),
        })
    return {"macro": macro, "micro": micro, "num_blocks": architecture.num_blocks,
            "use_layernorm": int(use_layernorm), "config": config}


def _block_from_official(number: int, wiring: Any, choices: Any, nodes: tuple[str, ...],
                         source: str) -> Block:
    def fail(field: str, message: str) -> NASRecError:
        return NASRecError(f"{source}: block {number}: field '{field}': {message}")

    for part, expected in ((wiring, _MACRO_FIELDS), (choices, _MICRO_FIELDS)):
        if not isinstance(part, dict):
            raise NASRecError(f"{source}: block {number}: expected an object with {list(expected)}")
        for field in expected:
            if field not in part:
                raise fail(field, "missing")
        unknown = sorted(set(part) - set(expected))
        if unknown:
            raise fail(unknown[0], "unknown field")

    def index_list(field: str) -> tuple[int, ...]:
        value = wiring[field]
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            raise fail(field, f"{value!r} is not a list of block indices")
        return tuple(value)

    def single_index(field: str) -> int:
        value = index_list(field)
        if len(value) != 1:
            raise fail(field, f"{list(value)} does not hold exactly one block index")
        return value[0]

    def flag(field: str) -> bool:
        value = choices[field]
        if value not in (0, 1):  # True/False compare equal to 1/0
            raise fail(field, f"{value!r} is not 0 or 1")
        return bool(value)

    active = choices["active_nodes"]
    if not isinstance(active, list) or not all(_is_int(node) for node in active):
        raise fail("active_nodes", f"{active!r} is not a list of node indices")
    ops = []
    for node in active:
        if not 0 <= node < len(nodes):
            raise fail("active_nodes", f"node {node} is not one of 0..{len(nodes) - 1} ({list(nodes)})")
        ops.append(nodes[node])
    return Block(
        dense_sources=index_list("dense_idx"),
        sparse_sources=index_list("sparse_idx"),
        dense_left=single_index("dense_left_idx"),
        dense_right=single_index("dense_right_idx"),
        dense_ops=tuple(op for op in ops if operator_spec(op).branch == DENSE),
        sparse_ops=tuple(op for op in ops if operator_spec(op).branch != DENSE),
        dense_dim=choices["dense_in_dims"],
        sparse_dim=choices["sparse_in_dims"],
        project_concat=flag("dense_sparse_interact"),
        fm=flag("deep_fm"),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_architecture(path: str | Path) -> Architecture:
    """An architecture JSON file in this project's format or the official one, checked before
    any model is built from it: every gene must be one some space admits (an official file's:
    one its space admits); a fault is a `NASRecError` naming the file, block and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise NASRecError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise NASRecError(f"{path}: not a text file") from None
    except json.JSONDecodeError as error:
        raise NASRecError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
    if isinstance(data, dict) and "blocks" in data:
        architecture = Architecture.from_dict(data, source=str(path))
        validate_structure(architecture, str(path))
        return architecture
    architecture, space_name = from_official(data, source=str(path))
    validate_structure(architecture, str(path))
    try:
        architecture.validate(get_space(space_name))
    except NASRecError as error:
        raise NASRecError(f"{path}: {error}") from None
    return architecture
