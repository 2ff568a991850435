"""Work shared out over the ranks of a job: each rank does its share of a list, and every rank
gets all the results back, in the list's order (`spread_over_ranks`); or rank 0 alone does a
step and every rank gets its result (`on_main_rank`).

Both are collectives over the default process group (`all_gather_object` /
`broadcast_object_list`, gloo on CPU) and plain calls in a lone process. An error raised on
one rank is raised on every rank, so no rank waits for a result that never comes: the rank
that failed raises its own exception, the others a `NASRecError` (a user's error) or a
`RuntimeError` (a bug) naming the rank and its message.

Example::

    with job_group(threads) as context:  # torchrun's ranks, or None in a lone process
        results = spread_over_ranks(architectures, lambda share: [score(a) for a in share])
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import torch.distributed as dist

from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.distributed import (DistributedContext, init_distributed,
                                               set_threads, teardown)

Item = TypeVar("Item")
Result = TypeVar("Result")

JOB_TIMEOUT_SECONDS = 7 * 24 * 3600.0
"""The collective timeout of a job whose ranks wait for each other's shares (a rank's share of
a search generation or of a retraining can take hours)."""


def world_size() -> int:
    """Ranks of the default process group (1 without one)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the default process group (0 without one)."""
    return dist.get_rank() if dist.is_initialized() else 0


def launched_on_many_ranks() -> bool:
    """Whether torchrun started this process as one of several ranks."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def job_group(num_threads: Optional[int], device: str = "cpu"
              ) -> Iterator[Optional[DistributedContext]]:
    """The job's ranks for the duration of a stage: the process group already initialised
    (a pipeline's), or one started here when torchrun launched several ranks (with
    `JOB_TIMEOUT_SECONDS`, torn down on the way out); None in a lone process, whose intra-op
    threads are pinned as a one-process stage does (`set_threads(num_threads, 1)`)."""
    if not dist.is_initialized() and not launched_on_many_ranks():
        set_threads(num_threads, 1)
        yield None
        return
    context = init_distributed(device, num_threads, JOB_TIMEOUT_SECONDS)
    try:
        yield context
    finally:
        teardown(context)


def _outcome(work: Callable[[], Any]) -> tuple[tuple[bool, Any, bool], Optional[BaseException]]:
    """((succeeded, result or message, a user's error), the exception raised) of `work()`."""
    try:
        return (True, work(), False), None
    except Exception as error:  # every rank must hear of it; re-raised below
        return (False, f"{type(error).__name__}: {error}", isinstance(error, NASRecError)), error


def _raise_failures(outcomes: Sequence[tuple[bool, Any, bool]],
                    own: Optional[BaseException]) -> None:
    if own is not None:
        raise own
    for failed_rank, (succeeded, message, user_error) in enumerate(outcomes):
        if not succeeded:
            text = f"rank {failed_rank} failed: {message}"
            raise NASRecError(text) if user_error else RuntimeError(text)


def share_of(items: Sequence[Item], of_rank: int, ranks: int) -> list[Item]:
    """The items rank `of_rank` of `ranks` takes: every `ranks`-th, from its own index."""
    return list(items[of_rank::ranks])


def spread_over_ranks(items: Sequence[Item],
                      work: Callable[[list[Item]], Sequence[Result]]) -> list[Result]:
    """`work(share)` on this rank's share of `items` (`share_of`), and every rank's results
    gathered on every rank in the order of `items` (a collective; `work(items)` in a lone
    process). `work` returns one picklable result per item of its share, in order."""
    ranks = world_size()
    if ranks == 1:
        return list(work(list(items)))
    mine = share_of(items, rank(), ranks)

    def checked() -> list[Result]:
        results = list(work(mine))
        if len(results) != len(mine):
            raise RuntimeError(f"a share of {len(mine)} items gave {len(results)} results")
        return results

    outcome, own = _outcome(checked)
    gathered: list[Any] = [None] * ranks
    dist.all_gather_object(gathered, outcome)
    _raise_failures(gathered, own)
    results: list[Any] = [None] * len(items)
    for of_rank, (_, shared, _) in enumerate(gathered):
        results[of_rank::ranks] = shared
    return results


def on_main_rank(work: Callable[[], Result]) -> Result:
    """`work()` on rank 0 alone, its (picklable) result on every rank (a collective; a plain
    call in a lone process)."""
    if world_size() == 1:
        return work()
    outcome, own = _outcome(work) if rank() == 0 else ((True, None, False), None)
    holder = [outcome]
    dist.broadcast_object_list(holder, src=0)
    _raise_failures([holder[0]], own)
    return holder[0][1]
