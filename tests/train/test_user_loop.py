"""A found model adopted by a user: NASRecNet inside a plain TorchRec loop they own.

Their own `EmbeddingBagCollection`, `DistributedModelParallel` (fused Adagrad via
`fused_params`), optimizers and `TrainPipelineBase`; none of our trainer, planner or
embedding helpers. And the public train wrapper under TorchRec's `TrainPipelineSparseDist`,
which FX-traces it.
"""

from __future__ import annotations

import random

import pytest
import torch
from toy_training import ToyLoader, toy_dmp, toy_schema

pytest.importorskip("nasrec_torchrec.nn.networks")

from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain  # noqa: E402
from nasrec_torchrec.nn.networks import NASRecNet  # noqa: E402
from nasrec_torchrec.space import Architecture, get_space, sample_architecture  # noqa: E402
from nasrec_torchrec.train.distributed import init_distributed, teardown  # noqa: E402


def test_nasrecnet_from_json_trains_in_a_users_own_torchrec_loop(tmp_path):
    import torch.distributed as dist
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.train_pipeline import TrainPipelineBase
    from torchrec.modules.embedding_configs import EmbeddingBagConfig
    from torchrec.modules.embedding_modules import EmbeddingBagCollection
    from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper

    architecture_file = tmp_path / "arch.json"
    architecture_file.write_text(
        sample_architecture(get_space("nasrec-small"), random.Random(1)).to_json())
    architecture = Architecture.from_json(architecture_file.read_text())

    context = init_distributed("cpu", num_threads=1)
    try:
        assert dist.is_initialized()
        schema = toy_schema()
        torch.manual_seed(0)
        ebc = EmbeddingBagCollection(tables=[
            EmbeddingBagConfig(name=f"user_{f.name}", embedding_dim=16,
                               num_embeddings=f.num_rows, feature_names=[f.name])
            for f in schema.sparse], device=torch.device("meta"))
        body = NASRecNet(architecture, len(schema.dense), len(schema.sparse), embedding_dim=16)
        model = NASRecModelTrain(NASRecModel(ebc, len(schema.dense), body))
        sharder = EmbeddingBagCollectionSharder(fused_params={
            "optimizer": EmbOptimType.EXACT_ADAGRAD, "learning_rate": 0.1})
        dmp = DistributedModelParallel(model, device=torch.device("cpu"), sharders=[sharder])
        fused = set(dmp.fused_optimizer.params)
        dense = KeyedOptimizerWrapper(  # data_parallel tables, if any, land here
            {name: p for name, p in dmp.named_parameters() if name not in fused},
            lambda params: torch.optim.Adagrad(params, lr=0.04))
        optimizer = CombinedOptimizer([dmp.fused_optimizer, dense])
        pipeline = TrainPipelineBase(dmp, optimizer, torch.device("cpu"))
        batches = list(ToyLoader(schema, 64 * 8, 64))
        losses = []
        for _epoch in range(6):
            iterator = iter(batches)
            for _ in batches:
                loss, _, _ = pipeline.progress(iterator)
                losses.append(float(loss))
            pipeline.reset()
    finally:
        teardown(context)
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < first - 0.02, (first, last)


@pytest.mark.parametrize("embedding_l2", [0.0, 0.5])
def test_public_train_wrapper_trains_under_train_pipeline_sparse_dist(context, embedding_l2):
    """`NASRecModelTrain` (the trainer's model too) under DMP, one gloo rank on CPU: the
    traced `TrainPipelineSparseDist` gives the losses of the eager `TrainPipelineBase`."""
    from torchrec.distributed.train_pipeline import TrainPipelineBase, TrainPipelineSparseDist

    from nasrec_torchrec.train.optimizers import build_optimizer

    schema = toy_schema()
    losses = {}
    for pipeline_class in (TrainPipelineBase, TrainPipelineSparseDist):
        dmp = toy_dmp(schema, embedding_l2=embedding_l2)
        pipeline = pipeline_class(dmp, build_optimizer(dmp), torch.device("cpu"))
        batches = iter(ToyLoader(schema, 64 * 6, 64))
        losses[pipeline_class] = [float(pipeline.progress(batches)[0]) for _ in range(6)]
    base, sparse_dist = losses[TrainPipelineBase], losses[TrainPipelineSparseDist]
    assert sparse_dist == pytest.approx(base, rel=1e-6)
    assert base[-1] < base[0]  # it trains


@pytest.mark.parametrize("baseline", ["linear", "dlrm", "deepfm", "autoint", "xdeepfm",
                                      "dcnv2"])
def test_baselines_train_under_train_pipeline_sparse_dist(context, baseline):
    """Every baseline body in the same public wrapper: the traced pipeline gives the eager
    pipeline's losses."""
    from torchrec.distributed.train_pipeline import TrainPipelineBase, TrainPipelineSparseDist

    from nasrec_torchrec.train.optimizers import build_optimizer

    schema = toy_schema()
    losses = {}
    for pipeline_class in (TrainPipelineBase, TrainPipelineSparseDist):
        dmp = toy_dmp(schema, baseline=baseline)
        pipeline = pipeline_class(dmp, build_optimizer(dmp), torch.device("cpu"))
        batches = iter(ToyLoader(schema, 32 * 3, 32))
        losses[pipeline_class] = [float(pipeline.progress(batches)[0]) for _ in range(3)]
    assert losses[TrainPipelineSparseDist] == pytest.approx(losses[TrainPipelineBase], rel=1e-6)
