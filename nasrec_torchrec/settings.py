"""Typed settings: dataclass fields that carry their own flag, help, choices and bounds.

A stage's config is a dataclass whose fields are declared with `option(...)`. From that one
declaration come the command's flags and `--help` (`add_options`), the config from parsed
flags (`from_args`), from a YAML/JSON mapping (`from_mapping`, with type checks), and the
checks of every value (`check`). Errors are `NASRecError`s naming the source (a file, or the
command), the field and its flag. Pure Python (no torch).

Example::

    @dataclass
    class Run:
        steps: int = option(100, "training steps", minimum=1)
        schedule: str = option("cosine", "LR schedule", choices=("cosine", "constant"))

    parser = argparse.ArgumentParser()
    add_options(parser, Run)
    run = from_args(Run, parser.parse_args(["--steps", "5"]))  # Run(steps=5, ...)
    check(run, "nasrec demo")
"""

from __future__ import annotations

import argparse
import json
import math
import os
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, is_dataclass
from typing import (Any, Callable, Iterable, Iterator, Mapping, NoReturn, Optional, Sequence,
                    Union)

from nasrec_torchrec.errors import NASRecError

Choices = Union[Sequence[str], Callable[[], Iterable[str]], None]


@dataclass(frozen=True)
class Option:
    """How a field appears on the command line and which values it admits.

    Args:
        help: the flag's help text (the default is appended).
        flag: the flag (default `--field-name`; `--no-field-name` for a bool that
            defaults to True).
        choices: the admitted values, or a function returning them (a registry's names).
        metavar: the flag's value placeholder.
        minimum, maximum: inclusive bounds; above, below: exclusive bounds.
        cli: False for a field that is set by code only (no flag).
        fixed_on_resume: False for a setting a resumed run may change (`changed_settings`):
            one that cannot change what the run computes (threads, progress bars, logging,
            where files go) or only says how far it goes (a search's budget).
        path: the value names a file or directory (compared as a real path on resume).
        none_as: the flag value that gives None where the default is not None (e.g. "0" for
            "off"; the config class turns it into None).
    """

    help: str = ""
    flag: Optional[str] = None
    choices: Choices = None
    metavar: Optional[str] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    above: Optional[float] = None
    below: Optional[float] = None
    cli: bool = True
    fixed_on_resume: bool = True
    path: bool = False
    none_as: Optional[str] = None

    def choice_names(self) -> Optional[tuple[str, ...]]:
        """The admitted values (a registry's current names), or None for any."""
        if self.choices is None:
            return None
        names = self.choices() if callable(self.choices) else self.choices
        return tuple(names)


class _LazyChoices:
    """argparse `choices` read from a registry only when a flag is parsed or its help shown
    (a registry may live in a module that imports torch)."""

    def __init__(self, spec: Option) -> None:
        self._spec = spec

    def _names(self) -> tuple[str, ...]:
        return self._spec.choice_names() or ()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __len__(self) -> int:
        return len(self._names())


def option(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING,
           **details: Any) -> Any:
    """A dataclass field with an `Option` (see there for `details`)."""
    metadata = {"option": Option(help=help, **details)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def same_as(cls: type, name: str) -> Any:
    """A field declared like `cls`'s field `name`: the same default, help, choices and
    bounds (for a config section that sets a stage's setting)."""
    item = cls.__dataclass_fields__[name]
    if item.default_factory is not MISSING:  # type: ignore[misc]
        return field(default_factory=item.default_factory,  # type: ignore[misc]
                     metadata=item.metadata)
    return field(default=item.default, metadata=item.metadata)


def option_of(item: Field) -> Option:
    """The `Option` of a dataclass field (an empty one for a plain field)."""
    return item.metadata.get("option", Option())


def _default(item: Field) -> Any:
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:  # type: ignore[misc]
        return item.default_factory()  # type: ignore[misc]
    return MISSING


def flag_of(item: Field) -> str:
    """The command-line flag of a field."""
    declared = option_of(item).flag
    if declared:
        return declared
    name = item.name.replace("_", "-")
    return f"--no-{name}" if _default(item) is True else f"--{name}"


def _plain_type(hint: Any) -> tuple[Any, bool]:
    """(the type inside Optional[...], whether None is admitted)."""
    if typing.get_origin(hint) is Union:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return args[0], True
    return hint, False


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def add_options(parser: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()) -> None:
    """Add one flag per field of `cls` with an `Option` (nested dataclasses flattened)."""
    hints, skipped = _hints(cls), set(skip)
    for item in fields(cls):
        hint, optional = _plain_type(hints[item.name])
        if is_dataclass(hint) and not optional:
            add_options(parser, hint, skipped)
            continue
        spec = option_of(item)
        if "option" not in item.metadata or not spec.cli or item.name in skipped:
            continue
        default = _default(item)
        text = spec.help
        if isinstance(default, bool):
            parser.add_argument(flag_of(item), dest=item.name, action="store_const",
                                const=not default, default=None, help=text)
            continue
        if default not in (None, MISSING, "") and default != () and default != []:
            text = f"{text} (default {default})" if text else f"default {default}"
        kwargs: dict[str, Any] = {"dest": item.name, "default": None, "help": text,
                                  "metavar": spec.metavar}
        if spec.choices is not None:
            kwargs["choices"] = _LazyChoices(spec)
        origin = typing.get_origin(hint)
        if origin in (list, tuple):
            args = typing.get_args(hint)
            kwargs["type"] = args[0]
            if origin is tuple and Ellipsis not in args:
                kwargs["nargs"] = len(args)
            else:  # repeatable: --flag a b --flag c -> [a, b, c]
                kwargs.update(nargs="+", action="extend")
        else:
            kwargs["type"] = hint
        parser.add_argument(flag_of(item), **kwargs)


def from_args(cls: type, args: argparse.Namespace, base: Any = None,
              skip: Iterable[str] = ()) -> Any:
    """A `cls` from parsed flags: the flags given override `base` (default: `cls()`); the
    fields in `skip` (not added as flags by `add_options`) keep the base's values."""
    hints, skipped = _hints(cls), set(skip)
    values: dict[str, Any] = {}
    for item in fields(cls):
        hint, optional = _plain_type(hints[item.name])
        inner = getattr(base, item.name) if base is not None else None
        if is_dataclass(hint) and not optional:  # a section: its flags are flattened
            values[item.name] = from_args(hint, args, inner, skipped)
            continue
        given = getattr(args, item.name, None)
        if given is not None and option_of(item).cli and "option" in item.metadata \
                and item.name not in skipped:
            origin = typing.get_origin(hint)
            values[item.name] = tuple(given) if origin is tuple else given
        elif base is not None:
            values[item.name] = inner
    return cls(**values)


def _comparable(value: Any) -> Any:
    """`value` as JSON would hold it (tuples as lists, dataclasses as dicts)."""
    return json.loads(json.dumps(asdict(value) if is_dataclass(value) else value, default=str))


def changed_settings(config: Any, recorded: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The settings of `config` a resumed run must keep (`Option.fixed_on_resume`) whose
    value differs from `recorded` (the same config class as a dict, e.g. an earlier
    run's): one `"name (--flag): recorded -> now"` each. Nested dataclasses are compared
    field by field; a field missing from `recorded` counts as its default."""
    changes: list[str] = []
    for item in fields(config):
        spec = option_of(item)
        if not spec.fixed_on_resume:
            continue
        value = getattr(config, item.name)
        earlier = recorded.get(item.name, _default(item))
        if is_dataclass(value) and isinstance(earlier, Mapping):
            changes += changed_settings(value, earlier, f"{prefix}{item.name}.")
        elif spec.path and isinstance(value, str) and isinstance(earlier, str):
            if os.path.realpath(value) != os.path.realpath(earlier):
                changes.append(f"{prefix}{item.name} ({flag_of(item)}): {earlier!r} -> "
                               f"{value!r}")
        elif _comparable(value) != _comparable(earlier):
            flag = f" ({flag_of(item)})" if spec.cli and "option" in item.metadata else ""
            changes.append(f"{prefix}{item.name}{flag}: {_comparable(earlier)!r} -> "
                           f"{_comparable(value)!r}")
    return changes


def _fault(source: str, item: Field, prefix: str, value: Any, why: str,
           with_flag: bool) -> NASRecError:
    flag = f" ({flag_of(item)})" if with_flag and option_of(item).cli \
        and "option" in item.metadata else ""
    where = f"{source}: " if source else ""
    return NASRecError(f"{where}field '{prefix}{item.name}'{flag}: {value!r} {why}")


def _check_value(item: Field, value: Any, source: str, prefix: str, with_flag: bool) -> None:
    if isinstance(value, (list, tuple)):  # each element is checked
        for element in value:
            _check_value(item, element, source, prefix, with_flag)
        return
    spec = option_of(item)
    names = spec.choice_names()
    if names is not None and value not in names:
        raise _fault(source, item, prefix, value, f"is not one of {', '.join(names)}",
                     with_flag)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value != value:
        raise _fault(source, item, prefix, value, "is not a number", with_flag)
    if value in (math.inf, -math.inf):
        raise _fault(source, item, prefix, value, "is not a finite number", with_flag)
    for bound, fails, words in ((spec.minimum, lambda b: value < b, "must be at least"),
                                (spec.maximum, lambda b: value > b, "must be at most"),
                                (spec.above, lambda b: value <= b, "must be greater than"),
                                (spec.below, lambda b: value >= b, "must be less than")):
        if bound is not None and fails(bound):
            raise _fault(source, item, prefix, value, f"{words} {bound}", with_flag)


def check(config: Any, source: str = "", prefix: str = "", with_flags: bool = True) -> None:
    """Raise `NASRecError` naming `source` (if any), the field and (`with_flags`) its flag for
    the first value its `Option` does not admit (None passes for Optional fields)."""
    for item in fields(config):
        value = getattr(config, item.name)
        if is_dataclass(value):
            check(value, source, f"{prefix}{item.name}.", with_flags)
        elif value is not None:
            _check_value(item, value, source, prefix, with_flags)


def _typed(value: Any, hint: Any, name: str, source: str) -> Any:
    hint, optional = _plain_type(hint)
    if value is None:
        if optional:
            return None
        raise NASRecError(f"{source}: field '{name}': expected {_name(hint)}, got null")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise NASRecError(f"{source}: field '{name}': expected a list, got {value!r}")
        items = [_typed(item, args[0], f"{name}[{i}]", source) for i, item in enumerate(value)]
        if origin is tuple and Ellipsis not in args and len(items) != len(args):
            raise NASRecError(f"{source}: field '{name}': expected {len(args)} values, got "
                              f"{len(items)}")
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is Any:
        return value
    if is_dataclass(hint):
        return from_mapping(hint, value, source, f"{name}.")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a numeric name
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise NASRecError(f"{source}: field '{name}': expected {_name(hint)}, got {value!r}")
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def from_mapping(cls: type, data: Mapping[str, Any], source: str, prefix: str = "") -> Any:
    """A `cls` from a mapping (parsed YAML or JSON); unknown fields and values of the wrong
    type are `NASRecError`s naming `source` and the field. Values are not `check`ed."""
    if not isinstance(data, Mapping):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "top level"
        raise NASRecError(f"{source}: {where}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise NASRecError(f"{source}: unknown field '{prefix}{unknown[0]}' (known: "
                          f"{', '.join(sorted(known))})")
    values = {}
    for name, value in data.items():
        hint, optional = _plain_type(hints[name])
        if is_dataclass(hint) and not (optional and value is None):
            # an empty section keeps its defaults
            values[name] = from_mapping(hint, value or {}, source, f"{prefix}{name}.")
        else:
            values[name] = _typed(value, hints[name], f"{prefix}{name}", source)
    return cls(**values)


class StrictParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose faults are `NASRecError`s instead of an exit (for flags
    that come from a file, e.g. an experiment config's `args`)."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise NASRecError(f"{self.prog}: {message}")


def to_argv(config: Any) -> list[str]:
    """The flags that rebuild `config` from its class's defaults with `from_args` (the
    command line a user can rerun); nested sections are flattened."""
    argv: list[str] = []
    for item in fields(config):
        value = getattr(config, item.name)
        if is_dataclass(value) and "option" not in item.metadata:
            argv += to_argv(value)
            continue
        spec = option_of(item)
        if "option" not in item.metadata or not spec.cli or value == _default(item):
            continue
        flag = flag_of(item)
        if isinstance(value, bool):
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        elif value is not None:
            argv += [flag, str(value)]
        elif spec.none_as is not None:
            argv += [flag, spec.none_as]
    return argv
