"""Whether the dense body can run in the precision a run asks for (`TrainConfig.precision`)."""

from __future__ import annotations

import torch

from nasrec_torchrec.analysis.host import BF16_FLAGS, cpu_has_bf16
from nasrec_torchrec.errors import NASRecError


def check_precision(precision: str, device: torch.device, source: str = "train") -> None:
    """Refuse `--precision bf16` on a CPU without bf16 matrix instructions (their absence
    makes bf16 products an emulation, slower than fp32); CUDA devices take it as is."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        raise NASRecError(f"{source}: --precision bf16: this CPU has no bf16 matrix "
                          f"instructions (none of {', '.join(BF16_FLAGS)} in /proc/cpuinfo); "
                          "use --precision fp32, or --device cuda on a machine with a GPU")
