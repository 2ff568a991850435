"""A found architecture trained in your own TorchRec loop.

Your `EmbeddingBagCollection` (on the meta device: the sharder allocates it), the found model
on top (`NASRecModel.for_architecture`), its train wrapper (`NASRecModelTrain`), Adagrad fused
into the backward for the tables, `DistributedModelParallel`, a `CombinedOptimizer` of the
fused and a dense Adagrad, and TorchRec's `TrainPipelineSparseDist` over
`RandomRecDataset` batches. Nothing else of nasrec_torchrec is used.

    python examples/train_found_architecture.py --steps 20
    torchrun --nproc_per_node 2 examples/train_found_architecture.py --steps 20

gloo on CPU here; on GPUs use `backend="nccl"` and `torch.device("cuda", local_rank)`.
"""

from __future__ import annotations

import argparse
import gc
import os

import torch
import torch.distributed as dist
from torch.distributed.optim import _apply_optimizer_in_backward as apply_optimizer_in_backward
from torchrec.datasets.random import RandomRecDataset
from torchrec.distributed.model_parallel import DistributedModelParallel
from torchrec.distributed.train_pipeline import TrainPipelineSparseDist
from torchrec.modules.embedding_configs import EmbeddingBagConfig
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper
from torchrec.optim.optimizers import in_backward_optimizer_filter

from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.space import load_architecture

DENSE_FEATURES = 13
SPARSE_FEATURES = [f"C{i}" for i in range(1, 27)]
TABLE_ROWS = 1000
EMBEDDING_DIM = 16
DEFAULT_ARCHITECTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "specs",
                                    "architectures", "simple.json")


def embedding_bag_collection() -> EmbeddingBagCollection:
    """One table per sparse feature, on the meta device."""
    return EmbeddingBagCollection(tables=[
        EmbeddingBagConfig(name=f"t_{name}", embedding_dim=EMBEDDING_DIM,
                           num_embeddings=TABLE_ROWS, feature_names=[name])
        for name in SPARSE_FEATURES], device=torch.device("meta"))


def train(model: NASRecModel, steps: int, batch_size: int) -> list[float]:
    """Train `model` for `steps` batches per rank; this rank's losses."""
    device = torch.device("cpu")
    apply_optimizer_in_backward(torch.optim.Adagrad,
                                model.embedding_bag_collection.parameters(), {"lr": 0.04})
    dmp = DistributedModelParallel(NASRecModelTrain(model), device=device)
    dense = KeyedOptimizerWrapper(dict(in_backward_optimizer_filter(dmp.named_parameters())),
                                  lambda params: torch.optim.Adagrad(params, lr=0.04))
    optimizer = CombinedOptimizer([dmp.fused_optimizer, dense])
    pipeline = TrainPipelineSparseDist(dmp, optimizer, device)
    batches = iter(RandomRecDataset(
        keys=SPARSE_FEATURES, batch_size=batch_size, hash_size=TABLE_ROWS, ids_per_feature=2,
        num_dense=DENSE_FEATURES, manual_seed=dist.get_rank(), num_batches=steps))
    losses = []
    while True:
        try:
            loss, _logits, _labels = pipeline.progress(batches)  # the detached outputs
        except StopIteration:
            return losses
        losses.append(float(loss))


def init_process_group() -> None:
    """gloo, from torchrun's environment, or one process on its own."""
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    else:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)


def parse_args(description: str) -> argparse.ArgumentParser:
    """The flags both examples take."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=20, help="batches per rank")
    parser.add_argument("--batch-size", type=int, default=128, help="rows per batch per rank")
    return parser


def run(build_model, args: argparse.Namespace) -> None:
    """Build the model with `build_model(ebc)`, train it, print the losses of rank 0."""
    init_process_group()
    try:
        losses = train(build_model(embedding_bag_collection()), args.steps, args.batch_size)
        if dist.get_rank() == 0:
            print(f"{len(losses)} steps on {dist.get_world_size()} ranks: "
                  f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    finally:
        # The model, DistributedModelParallel and its DDP reducer are cycles: collect them while
        # the group lives, or the reducer's threads outlive it and abort the process at exit.
        gc.collect()
        dist.destroy_process_group()


def main() -> None:
    parser = parse_args(__doc__.splitlines()[0])
    parser.add_argument("--arch", default=DEFAULT_ARCHITECTURE, help="a found architecture")
    args = parser.parse_args()
    architecture = load_architecture(args.arch)
    run(lambda ebc: NASRecModel.for_architecture(ebc, DENSE_FEATURES, architecture), args)


if __name__ == "__main__":
    main()
