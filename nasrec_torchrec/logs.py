"""What a `nasrec` command prints: our own lines at INFO, the stack's at WARNING.

By default the `nasrec_torchrec.*` loggers print at INFO in a short format, every other
logger at WARNING (FBGEMM logs its TBE arguments on the root logger at INFO, TorchRec's
planner its tables on its own loggers), and the known, harmless warnings of the stack are
hidden by message; anything else they warn about still shows. With --verbose (or
NASREC_VERBOSE=1) every logger prints at DEBUG with timestamps, nothing is hidden and the
C++ log level defaults to INFO. torch configures its own loggers (`[rank0]:W...` lines) at
WARNING with their own handler; TORCH_LOGS changes them. Pure Python, no torch: set up before
torch is imported, so that TORCH_CPP_LOG_LEVEL applies.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import NamedTuple

OWN_LOGGER = "nasrec_torchrec"
# Set to 1 by a verbose command, so that its child processes (pipeline stages) are too.
VERBOSE_VARIABLE = "NASREC_VERBOSE"
CPP_LOG_LEVEL_VARIABLE = "TORCH_CPP_LOG_LEVEL"
HANDLER_NAME = "nasrec"
DEFAULT_FORMAT = "%(levelname)s %(short_name)s: %(message)s"
VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class KnownWarning(NamedTuple):
    """A `warnings.warn` of the stack hidden by default: its category, the start of its
    message and the module it is attributed to (regular expressions; "" for any module)."""

    category: type[Warning]
    message: str
    module: str = ""


KNOWN_WARNINGS: tuple[KnownWarning, ...] = (
    # TorchRec's planner picks this storage reservation itself when none is given.
    KnownWarning(FutureWarning, r"HeuristicalStorageReservation is known to cause issues",
                 r"torchrec\.distributed\.planner\.planners"),
    # TorchRec's DistributedModelParallel (and its data-parallel tables) pass it to
    # DistributedDataParallel.
    KnownWarning(FutureWarning, r"`broadcast_buffers` is deprecated",
                 r"torchrec\.distributed\.(model_parallel|embeddingbag)"),
    # TorchRec's collectives of row- and column-wise tables (torch deprecates their names).
    KnownWarning(FutureWarning, r"`torch\.distributed\.(reduce_scatter_tensor|"
                 r"all_gather_into_tensor)` is deprecated", r"torch\.distributed\.c10d_logger"),
    # TorchRec's sharded tables are ShardedTensors; any `.size()` of one warns.
    KnownWarning(FutureWarning, r"Please use DTensor instead and we are deprecating ShardedTensor"),
    # A distributed checkpoint read or written by a process without a process group (search).
    KnownWarning(UserWarning, r"torch\.distributed is disabled, unavailable or uninitialized",
                 r"torch\.distributed\.checkpoint"),
    # The backward of FBGEMM's dense kernel (data-parallel tables: Adam on CPU) is its own
    # autograd.Function; tests/train/test_recipe.py checks those tables train as torch Adam.
    KnownWarning(UserWarning, r"fbgemm::dense_embedding_codegen_lookup_function: an autograd "
                 r"kernel was not registered", r"torch\.autograd\.graph"),
)

# Logger name -> the starts of the messages of that logger's records hidden by default.
KNOWN_LOG_RECORDS: dict[str, tuple[str, ...]] = {
    "torchrec.distributed.planner.types": (
        "The topology was constructed directly rather than via TopologyFactory",),
    "torchrec.distributed.planner.storage_reservations": (
        "There is a known issue with TorchRec's dense tensor size calculation",),
    "torch.fx._symbolic_trace": ("is_fx_tracing will return true",),
    # Data-parallel tables: no sharding spec and no cache, by definition (one line per table).
    "root": ("Sharding spec not found for ",),
    "torchrec.distributed.utils": ("Sharding Type is data_parallel, caching params will be "
                                   "ignored",),
}


class _KnownRecordFilter(logging.Filter):
    """Drops the records of one logger whose message starts with a known text."""

    def __init__(self, message_starts: tuple[str, ...]) -> None:
        super().__init__()
        self.message_starts = message_starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.message_starts)


class _ShortNameFormatter(logging.Formatter):
    """Adds `short_name`: our logger names without the package, `train.trainer`."""

    def format(self, record: logging.LogRecord) -> str:
        record.short_name = record.name.removeprefix(OWN_LOGGER + ".")
        return super().format(record)


def verbose_from_environment() -> bool:
    """Whether NASREC_VERBOSE asks for verbose logs (any value but "", "0")."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def setup_logging(verbose: bool) -> None:
    """Configure this process's logging and warnings for a command (see the module doc).

    Installs a stderr handler on the root logger unless something else (an embedding program,
    pytest) already put handlers there. Calling it again switches the logging mode; warning
    filters, once added, stay. They go after those of -W / PYTHONWARNINGS, which win.
    """
    root = logging.getLogger()
    _install_handler(root, verbose)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger(OWN_LOGGER).setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, message_starts in KNOWN_LOG_RECORDS.items():
        logger = logging.getLogger(name)
        for earlier in [known for known in logger.filters
                        if isinstance(known, _KnownRecordFilter)]:
            logger.removeFilter(earlier)
        if not verbose:
            logger.addFilter(_KnownRecordFilter(message_starts))
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
        os.environ.setdefault(CPP_LOG_LEVEL_VARIABLE, "INFO")
        return
    os.environ.pop(VERBOSE_VARIABLE, None)
    for known in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=known.message, category=known.category,
                                module=known.module, append=True)


def _install_handler(root: logging.Logger, verbose: bool) -> None:
    ours = [handler for handler in root.handlers if handler.get_name() == HANDLER_NAME]
    if not ours and root.handlers:
        return
    handler = ours[0] if ours else logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(_ShortNameFormatter(VERBOSE_FORMAT if verbose else DEFAULT_FORMAT))
    if not ours:
        root.addHandler(handler)
