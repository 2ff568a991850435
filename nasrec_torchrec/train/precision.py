"""Whether the dense body can run as a run asks: its precision (`TrainConfig.precision`)
and its compilation (`TrainConfig.compile`)."""

from __future__ import annotations

import torch

from nasrec_torchrec.analysis.host import BF16_FLAGS, cpu_has_bf16
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.config import TrainConfig


def check_precision(precision: str, device: torch.device, source: str = "train") -> None:
    """Refuse `--precision bf16` on a CPU without bf16 matrix instructions (their absence
    makes bf16 products an emulation, slower than fp32); CUDA devices take it as is."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        raise NASRecError(f"{source}: --precision bf16: this CPU has no bf16 matrix "
                          f"instructions (none of {', '.join(BF16_FLAGS)} in /proc/cpuinfo); "
                          "use --precision fp32, or --device cuda on a machine with a GPU")


def check_body_execution(config: TrainConfig, device: torch.device, supernet: bool) -> None:
    """Refuse what the body of a run cannot run: `config.precision` on `device`
    (`check_precision`), `config.compile` for a `supernet` (its path, and so its shapes and
    graph, changes at every step)."""
    check_precision(config.precision, device, config.output)
    if supernet and config.compile:
        raise NASRecError(f"{config.output}: field 'compile' (--compile): not for a supernet "
                          "(its path changes at every step); compile the found "
                          "architecture's training (nasrec train --arch, retrain, final)")
