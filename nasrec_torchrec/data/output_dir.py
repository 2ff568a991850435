"""All-or-nothing output directories: write into a hidden sibling, rename at the end.

The sibling is `.NAME.partial-HOST-PID-TOKEN` (and, while an old output is replaced,
`.NAME.old-HOST-PID-TOKEN`): an interrupted writer deletes it on the way out (Ctrl-C, and
SIGTERM, which `nasrec` turns into the same interruption); one killed outright (SIGKILL,
a lost node) cannot, so the next writer of NAME removes the siblings whose process on this
host is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import uuid
from typing import Iterator

from nasrec_torchrec.errors import NASRecError

logger = logging.getLogger(__name__)


def _owner_tag() -> str:
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_siblings(path: str) -> list[str]:
    """Delete the `.NAME.partial-*` / `.NAME.old-*` siblings of `path` left by a writer on
    this host whose process is gone; returns the paths deleted."""
    parent, name = os.path.split(os.path.abspath(path))
    host = _owner_tag().rsplit("-", 1)[0]
    pattern = re.compile(rf"^\.{re.escape(name)}\.(partial|old)-{re.escape(host)}-(\d+)-\w+$")
    removed = []
    for entry in os.listdir(parent) if os.path.isdir(parent) else ():
        match = pattern.match(entry)
        if match and _process_gone(int(match.group(2))):
            stale = os.path.join(parent, entry)
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    if removed:
        logger.info("removed %d folder(s) of an interrupted earlier run: %s", len(removed),
                    ", ".join(removed))
    return removed


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary directory beside `path` that becomes `path` only on success.

    On any exception (KeyboardInterrupt included) the temporary directory is deleted and
    `path` is left as it was. An existing `path` is an error unless `overwrite`, in which case
    it is replaced only once the new output is complete. Siblings left by a killed earlier
    writer are removed first (`remove_stale_siblings`).
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise NASRecError(f"{path}: output already exists (pass --overwrite to replace it)")
    parent, name = os.path.split(path)
    try:
        os.makedirs(parent, exist_ok=True)
        remove_stale_siblings(path)
        token = f"{_owner_tag()}-{uuid.uuid4().hex[:8]}"
        temporary = os.path.join(parent, f".{name}.partial-{token}")
        os.makedirs(temporary)
    except OSError as error:
        raise NASRecError(f"{path}: cannot create the output there: "
                          f"{error.strerror or error}") from None
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if os.path.exists(path):
        retired = os.path.join(parent, f".{name}.old-{token}")
        os.rename(path, retired)
        os.rename(temporary, path)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(temporary, path)
