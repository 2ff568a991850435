"""The one exception type for faults a user can cause (bad file, config or architecture)."""

from __future__ import annotations


class NASRecError(Exception):
    """A user-facing error; its message names the file, line or field at fault."""


def located(message: str, path: str | None = None, line: int | None = None,
            field: str | None = None) -> NASRecError:
    """Build a `NASRecError` whose message starts with `path:line: field:`."""
    where = []
    if path is not None:
        where.append(str(path) if line is None else f"{path}:{line}")
    if field is not None:
        where.append(f"field '{field}'")
    prefix = ": ".join(where)
    return NASRecError(f"{prefix}: {message}" if prefix else message)
