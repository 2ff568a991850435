"""All-or-nothing output directories: write into a hidden sibling, rename at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from typing import Iterator

from nasrec_torchrec.errors import NASRecError


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary directory beside `path` that becomes `path` only on success.

    On any exception (KeyboardInterrupt included) the temporary directory is deleted and
    `path` is left as it was. An existing `path` is an error unless `overwrite`, in which case
    it is replaced only once the new output is complete.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise NASRecError(f"{path}: output already exists (pass --overwrite to replace it)")
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    temporary = os.path.join(parent, f".{name}.partial-{token}")
    os.makedirs(temporary)
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
