"""Helpers of the pipeline tests: a command runner, tiny training flags, a candidates file."""

from __future__ import annotations

import argparse
import importlib
import random

from nasrec_torchrec.artifacts import rewrite_jsonl

TINY_TRAIN = ["--batch-size", "128", "--eval-batch-size", "512", "--embedding-cap", "500",
              "--no-progress", "--threads", "1", "--device", "cpu"]


def run_command(module_name: str, argv: list[str]) -> int:
    """Run `nasrec <command>` in this process (the command module's parser and run)."""
    module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def write_candidates(path: str, losses: list[float], seed: int = 1) -> list[dict]:
    """A hand-written `candidates.jsonl`: random nasrec-small architectures with `losses`."""
    from nasrec_torchrec.space import get_space, sample_architecture

    space = get_space("nasrec-small")
    rng = random.Random(seed)
    records = []
    for index, loss in enumerate(losses):
        architecture = sample_architecture(space, rng)
        records.append({"index": index, "generation": 0, "loss": loss, "log_loss": loss,
                        "auc": 0.6, "mflops": 1.0, "params": 1,
                        "architecture": architecture.to_dict()})
    rewrite_jsonl(path, records)
    return records
