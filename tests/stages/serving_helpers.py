"""Helpers of the serving tests: a command runner and the per-row probabilities of the path
`nasrec evaluate` takes (its loaded model on its loader's batches)."""

from __future__ import annotations

import argparse
import importlib

import numpy as np


def run_command(module_name: str, argv: list[str]) -> int:
    """Run `nasrec <command>` in this process (the command module's parser and run)."""
    module = importlib.import_module(f"nasrec_torchrec.commands.{module_name}")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def evaluated_probabilities(model_dir: str, data: str, split: str
                            ) -> tuple[np.ndarray, np.ndarray]:
    """`(probabilities [n] float64, labels [n])` of the rows of `split`, in order, as
    `nasrec evaluate` computes them: `stages.evaluate.load_trained_model`'s wrapper on the
    batches of `ParquetBatchLoader` (table rows under the run's cap)."""
    import torch

    from nasrec_torchrec.data.loader import ParquetBatchLoader
    from nasrec_torchrec.stages.evaluate import load_trained_model

    wrapper, config, _, _ = load_trained_model(model_dir, data)
    loader = ParquetBatchLoader(data, split, 128, embedding_cap=config.embedding_cap)
    probabilities, labels = [], []
    with torch.no_grad():
        for batch in loader:
            _, (_, logits, batch_labels) = wrapper(batch)
            probabilities.append(torch.sigmoid(logits.double()).numpy())
            labels.append(batch_labels.numpy())
    return np.concatenate(probabilities), np.concatenate(labels)
