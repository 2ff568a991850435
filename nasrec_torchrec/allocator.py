"""Keep freed memory in the process instead of handing it back to the kernel (glibc malloc).

A training step allocates and frees the same megabyte-sized activations and gradients over
and over. glibc serves a block that large by `mmap` and unmaps it when freed (or trims the
heap), so every step page-faults its activations in again: on this project's CPU steps
(batch 256) hundreds to thousands of faults a step, 10-13% of a dense body's step time
(`benchmarks/supernet_step.py` records the faults it saw). `keep_freed_memory` raises glibc's
thresholds so that the freed blocks are reused. The process's peak memory is the same (what
it keeps is what it had); only its release after a peak is deferred. Elsewhere (another C
library, another system) it does nothing. The `nasrec` command and its child processes call
it first thing; a user's own training script may call it too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 << 20  # blocks below this come from the reused heap
TRIM_THRESHOLD_BYTES = 1 << 30  # free heap top kept before it is given back
TOP_PAD_BYTES = 64 << 20  # the heap grows in steps this large (address space only)


def keep_freed_memory() -> bool:
    """Set glibc malloc to reuse freed blocks up to 32 MiB rather than unmap them; whether
    the settings were applied (False off glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                (M_TOP_PAD, TOP_PAD_BYTES))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
