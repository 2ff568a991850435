"""Freed memory kept in the process: training steps stop faulting their activations in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nasrec_torchrec.allocator import keep_freed_memory

# Steps of an MLP at batch 1024 (4 MiB activations) in a fresh process; prints the page
# faults of a step after warm-up. argv[1] "kept": keep_freed_memory() first.
STEPS = """
import resource, sys
import torch
from nasrec_torchrec.allocator import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 1024), torch.nn.ReLU(),
                            torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1))
optimizer = torch.optim.Adagrad(model.parameters())
x = torch.randn(1024, 64)
def step():
    optimizer.zero_grad()
    model(x).sum().backward()
    optimizer.step()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
start = faults()
for _ in range(20):
    step()
print((faults() - start) / 20)
"""

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="glibc malloc settings: Linux only")


def _faults_per_step(mode: str) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    return float(done.stdout.strip().splitlines()[-1])


@glibc
def test_keeping_freed_memory_cuts_a_steps_page_faults_several_fold() -> None:
    default, kept = _faults_per_step("default"), _faults_per_step("kept")
    assert default > 500  # each step maps its activations afresh
    assert kept < default / 4


@glibc
def test_keep_freed_memory_applies_on_glibc() -> None:
    assert keep_freed_memory() is True
