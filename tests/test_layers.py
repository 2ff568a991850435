"""The package's shape: imports go down the layers only, no cycles, small modules.

Read from the source (AST), so it holds for lazy imports inside functions too. Pure Python.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nasrec_torchrec"
MAX_LINES = 450

# bottom to top: a module may import its own layer and the ones below it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "artifacts", "settings", "logs"),
    ("space",),
    ("data",),
    ("nn",),
    ("baselines", "model_spec"),
    ("embeddings", "analysis"),
    ("train",),
    ("search",),
    ("stages",),
    ("pipeline",),
    ("commands",),
    ("cli",),
)


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module}: its package is not in LAYERS")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("nasrec_torchrec.")}


def test_no_module_imports_a_higher_layer():
    modules = _modules()
    faults = []
    for name, path in modules.items():
        if name == "nasrec_torchrec":
            continue
        for imported in _imports(path, top_level_only=False):
            if imported in modules and _layer(imported) > _layer(name):
                faults.append(f"{name} imports {imported}")
    assert not faults, "\n".join(sorted(faults))


def test_no_import_cycle_between_modules():
    modules = _modules()
    graph = {name: {imported for imported in _imports(path, top_level_only=True)
                    if imported in modules and imported != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in graph[name]:
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(trail + [name, nxt])
            if nxt not in state:
                visit(nxt, trail + [name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_module_is_over_the_size_limit():
    long = {name: count for name, path in _modules().items()
            if (count := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
