"""A baseline's options: its dataclass of defaults, overridden by `KEY=VALUE` strings.

Pure Python (no torch). Values given as strings (from `--model-option KEY=VALUE`) are typed by
the dataclass field: int, float, bool (true/false/1/0/yes/no), str, and layer sizes
(`tuple[int, ...]`, written `400-400-400` or `400,400,400`; `none` or empty for no layer).

Example::

    options = resolve_options(DeepFMOptions, {"dropout": "0.2", "layer_sizes": "400-400"},
                              model="deepfm")
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Iterable, Mapping, TypeVar

from nasrec_torchrec.errors import NASRecError

T = TypeVar("T")

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_key_values(pairs: Iterable[str]) -> dict[str, str]:
    """`["dropout=0.2", "layer_sizes=400-400"]` -> `{"dropout": "0.2", ...}`."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise NASRecError(f"--model-option {pair!r}: expected KEY=VALUE")
        options[key] = value.strip()
    return options


def _parse(text: str, kind: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union:  # Optional[X]
        if text.lower() in ("none", "null", ""):
            return None
        inner = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _parse(text, inner[0], where)
    try:
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if origin is tuple:
            if text.lower() in ("", "none", "[]"):
                return ()
            parts = text.strip("[]()").replace(",", "-").split("-")
            return tuple(int(part) for part in parts if part.strip())
    except ValueError:
        raise NASRecError(f"{where}: cannot read {text!r} as {getattr(kind, '__name__', kind)}"
                          ) from None
    raise NASRecError(f"{where}: options of type {kind} are not supported")


def resolve_options(defaults: type[T], options: Mapping[str, Any], model: str) -> T:
    """The dataclass `defaults` with `options` applied (strings are typed by the field).

    Raises `NASRecError` naming the model and option for an unknown key or a bad value.
    """
    hints = typing.get_type_hints(defaults)
    known = {field.name for field in dataclasses.fields(defaults)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = key.replace("-", "_")
        where = f"--model {model}: option '{name}'"
        if name not in known:
            raise NASRecError(f"{where}: unknown; known options: {sorted(known)}")
        if isinstance(value, str) and hints[name] is not str:
            value = _parse(value, hints[name], where)
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    resolved = defaults(**values)
    check = getattr(resolved, "validate", None)
    if check is not None:
        check(model)
    return resolved


def options_dict(options: Any) -> dict[str, Any]:
    """JSON-ready dict of an options dataclass (tuples as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(options).items()}


def check_common(model: str, dropout: float, *layer_groups: tuple[int, ...]) -> None:
    """Raise `NASRecError` for a dropout outside [0, 1) or a layer size below 1."""
    if not 0.0 <= dropout < 1.0:
        raise NASRecError(f"--model {model}: option 'dropout': {dropout} is not in [0, 1)")
    for sizes in layer_groups:
        if any(size < 1 for size in sizes):
            raise NASRecError(f"--model {model}: layer sizes {list(sizes)} must be positive")
