"""What every benchmark JSON carries: the host it ran on and, for a throughput, the fraction of
that host's own matrix-product peak (measured at the start of the same run).

Imported by the scripts beside it (`python benchmarks/NAME.py` puts this folder on the path).
FLOPs are 2 per multiply-add (`torch.utils.flop_counter`); a body's training FLOPs per sample
are those of its forward + backward (the embedding lookups, not matrix products, are left out).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from nasrec_torchrec.analysis.host import fraction_of_peak, host_record, matmul_peak


def host_section(threads: Optional[int]) -> dict[str, Any]:
    """`{"host": host_record(threads)}`: the section every benchmark JSON starts with."""
    return {"host": host_record(threads)}


def peak_section(shapes: list[tuple[int, int, int]], threads: int,
                 dtypes: tuple[str, ...] = ("fp32",)) -> dict[str, Any]:
    """The host and its matrix-product peak at `shapes` with `threads` threads, now."""
    return {**host_section(threads),
            "matmul_peak": matmul_peak(shapes, threads=threads, dtypes=dtypes)}


def training_flops(run: Callable[[], Any]) -> float:
    """FLOPs `run()` dispatches (a forward + backward of a body, say)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())


def body_training_profile(body, batch: int, dense: int, sparse: int, embedding_dim: int,
                          *body_args: Any) -> tuple[float, list[tuple[int, int, int]]]:
    """(training FLOPs per sample, heaviest product shapes) of `body` on random inputs
    `dense [batch, dense]`, `sparse [batch, sparse, embedding_dim]`."""
    import torch

    from nasrec_torchrec.analysis.matmul_profile import gemm_calls, top_shapes

    inputs = (torch.randn(batch, dense), torch.randn(batch, sparse, embedding_dim))

    def step() -> None:
        body(*inputs, *body_args).sum().backward()

    with torch.random.fork_rng():
        flops = training_flops(step)
        shapes = top_shapes(gemm_calls(step), 4)
    body.zero_grad(set_to_none=True)
    return flops / batch, shapes


def throughput(samples_per_second: Optional[float], flop_per_sample: Optional[float],
               peak: dict[str, Any], dtype: str = "fp32", cores: int = 1) -> dict[str, Any]:
    """samples/s, the GFLOP/s they mean, and their fraction of `cores` times the wall-clock
    peak (`peak` measured with the threads of one process; `cores`: processes)."""
    if not samples_per_second or not flop_per_sample:
        return {"samples_per_second": samples_per_second, "fraction_of_peak": None}
    gflops = samples_per_second * flop_per_sample / 1e9
    return {"samples_per_second": round(samples_per_second, 1),
            "training_gflop_per_sample": round(flop_per_sample / 1e9, 6),
            "gflop_per_second": round(gflops, 2),
            "fraction_of_peak": round(fraction_of_peak(gflops, peak, dtype) / cores, 4)}
