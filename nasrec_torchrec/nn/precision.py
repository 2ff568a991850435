"""The dense body's precision: fp32, or bf16 products under autocast with fp32 weights.

`--precision bf16` runs the body's forward under `torch.autocast(device, torch.bfloat16)`:
matrix products (and the ops autocast lists) compute in bf16, the weights, their gradients,
the optimizer state and the embedding tables stay fp32, and the logits are returned in fp32.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

PRECISIONS = ("fp32", "bf16")


def body_autocast(precision: str, device_type: str) -> ContextManager:
    """The context the body's forward runs in: bf16 autocast on `device_type`, or nothing
    (torch is imported here: `PRECISIONS` is read by configs that must not import it)."""
    if precision == "bf16":
        import torch

        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
