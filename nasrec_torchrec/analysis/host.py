"""The host a figure was measured on, and its own matrix-product peak.

Benchmark figures differ between machines (AVX2 only, AVX-512, AVX-512 with AMX, a GPU) by
more than any change we make, so every benchmark JSON carries `host_record()` and reports its
throughputs against the peak measured at the start of the same run:

    host = host_record(threads=1)
    peak = matmul_peak(shapes=[(256, 512, 512)], threads=1)
    # {"fp32": {"gflops": 152.0, ...}, "bf16": {...}}
    fraction = achieved_gflops / peak["fp32"]["gflops"]

FLOPs here are 2 per multiply-add (the convention of `torch.utils.flop_counter`).
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Iterable, Optional

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
PEAK_DTYPES = ("fp32", "bf16")


def _cpu_info() -> tuple[str, set[str]]:
    """(CPU model name, CPU flags) from /proc/cpuinfo (platform's name and no flags elsewhere)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor(), flags


BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags of bf16 matrix instructions (without one, bf16 products are emulated: slow)."""


def cpu_has_bf16() -> bool:
    """Whether this CPU lists a bf16 matrix instruction set (`BF16_FLAGS`) in /proc/cpuinfo."""
    return any(flag in _cpu_info()[1] for flag in BF16_FLAGS)


def host_record(threads: Optional[int] = None) -> dict[str, Any]:
    """What a reader needs to compare a figure across machines.

    CPU model, the ISA flags that decide the matrix-product speed (avx2, avx512f,
    avx512_bf16, amx_bf16, amx_tile: True/False), logical CPUs, the threads the benchmark
    used, the load average when it started, torch's version and the GPU if there is one.
    """
    import torch

    model, flags = _cpu_info()
    record: dict[str, Any] = {
        "cpu_model": model, "machine": platform.machine(), "hostname": platform.node(),
        "isa": {flag: flag in flags for flag in ISA_FLAGS},
        "logical_cpus": os.cpu_count(), "threads": threads or torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return record


def _matmul_gflops(rows: int, inner: int, cols: int, dtype, seconds: float
                   ) -> tuple[float, float]:
    """Best (GFLOP per wall second, GFLOP per CPU second of this process) of
    `[rows, inner] @ [inner, cols]` over repeats filling about `seconds`."""
    import torch

    left = torch.randn(rows, inner).to(dtype)
    right = torch.randn(inner, cols).to(dtype)
    flops = 2.0 * rows * inner * cols
    for _ in range(3):  # warm-up: kernel selection, page faults
        torch.mm(left, right)
    best_wall = best_cpu = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        repeats, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < 0.05:
            torch.mm(left, right)
            repeats += 1
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        best_wall = max(best_wall, flops * repeats / wall / 1e9)
        best_cpu = max(best_cpu, flops * repeats / max(cpu, 1e-9) / 1e9)
    return best_wall, best_cpu


def matmul_peak(shapes: Iterable[tuple[int, int, int]] = ((256, 512, 512),),
                threads: Optional[int] = None, seconds: float = 0.5,
                dtypes: Iterable[str] = PEAK_DTYPES) -> dict[str, dict[str, Any]]:
    """The host's matrix-product peak through PyTorch, per dtype.

    Args:
        shapes: (rows, inner, cols) products to time, e.g. the benchmark's own layer shapes;
            the peak is the best over them.
        threads: intra-op threads while timing (restored afterwards).
        seconds: timing budget per shape and dtype.
        dtypes: "fp32" and/or "bf16".
    Returns: {dtype: {"gflops": best GFLOP/s (wall clock), "shape": [rows, inner, cols] that
        reached it, "per_shape": {"RxIxC": GFLOP/s}, "gflops_per_cpu_s": best GFLOP per CPU
        second of this process (all its threads: a per-core figure, steadier than the wall
        clock on a shared machine), "per_shape_per_cpu_s": {"RxIxC": GFLOP per CPU second}}}.
    """
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    peaks: dict[str, dict[str, Any]] = {}
    try:
        for name in dtypes:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[name]
            rates = {f"{r}x{i}x{c}": _matmul_gflops(r, i, c, dtype, seconds)
                     for r, i, c in shapes}
            per_shape = {key: wall for key, (wall, _) in rates.items()}
            per_cpu = {key: cpu for key, (_, cpu) in rates.items()}
            best = max(per_shape, key=per_shape.__getitem__)
            peaks[name] = {"gflops": round(per_shape[best], 2),
                           "shape": [int(x) for x in best.split("x")],
                           "per_shape": {k: round(v, 2) for k, v in per_shape.items()},
                           "gflops_per_cpu_s": round(max(per_cpu.values()), 2),
                           "per_shape_per_cpu_s": {k: round(v, 2) for k, v in per_cpu.items()}}
    finally:
        torch.set_num_threads(previous)
    return peaks


def fraction_of_peak(gflops: float, peak: dict[str, dict[str, Any]], dtype: str = "fp32",
                     clock: str = "wall") -> float:
    """`gflops` as a fraction of the measured `peak[dtype]`: GFLOP per wall second against
    the wall-clock peak (`clock="wall"`), or GFLOP per CPU second against the CPU-time peak
    (`clock="cpu"`)."""
    key = {"wall": "gflops", "cpu": "gflops_per_cpu_s"}[clock]
    return round(gflops / peak[dtype][key], 4)
