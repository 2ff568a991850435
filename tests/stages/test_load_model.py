"""`nasrec_torchrec.load_model`: the trained model of a run in the user's code scores what
`nasrec evaluate` scores, unsharded or sharded again by DMP."""

from __future__ import annotations

import pytest
import torch

import nasrec_torchrec
from nasrec_torchrec.data.loader import ParquetBatchLoader
from nasrec_torchrec.data.schema import Schema
from nasrec_torchrec.nn.model import NASRecModel, NASRecModelTrain
from nasrec_torchrec.stages.evaluate import evaluate_model
from nasrec_torchrec.train.metrics import binary_metrics, evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


def _logits_and_labels(model: NASRecModel, loader: ParquetBatchLoader
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    logits, labels = [], []
    with torch.no_grad():
        for batch in loader:
            logits.append(model(batch.dense_features, batch.sparse_features))
            labels.append(batch.labels)
    return torch.cat(logits), torch.cat(labels)


@pytest.mark.parametrize("run", ["architecture_run", "baseline_run"])
def test_loaded_model_scores_what_nasrec_evaluate_scores(run, request, new_data, serving_root):
    model_dir = request.getfixturevalue(run)
    trained = nasrec_torchrec.load_model(model_dir, device=torch.device("cpu"))
    assert isinstance(trained.model, NASRecModel) and not trained.model.training
    assert {p.device.type for p in trained.model.parameters()} == {"cpu"}
    assert trained.schema == Schema.load(f"{serving_root}/data")
    assert trained.embedding_cap == (100 if run == "architecture_run" else None)
    assert any(feature.num_rows > 100 for feature in trained.schema.sparse)  # ids are hashed
    assert trained.step == 3 and trained.checkpoint.endswith("step_000000003")

    loader = ParquetBatchLoader(new_data, "test", 64, embedding_cap=trained.embedding_cap)
    logits, labels = _logits_and_labels(trained.model, loader)
    evaluation = evaluate_model(model_dir, new_data, "test", write=False)["metrics"]
    assert binary_metrics(logits, labels) == pytest.approx(evaluation, rel=1e-12)
    assert len(logits) == 400


def test_loaded_model_sharded_again_by_dmp_scores_the_same(architecture_run, new_data):
    from torchrec.distributed.model_parallel import DistributedModelParallel

    from nasrec_torchrec.embeddings import load_embedding_tables
    from nasrec_torchrec.train.distributed import init_distributed, teardown

    trained = nasrec_torchrec.load_model(architecture_run)
    loader = ParquetBatchLoader(new_data, "test", 64, embedding_cap=trained.embedding_cap)
    expected = evaluate_model(architecture_run, new_data, "test", write=False)["metrics"]
    tables = trained.embedding_tables()
    assert sorted(tables) == sorted(f"t_{name}" for name in trained.schema.sparse_names)
    context = init_distributed("cpu", num_threads=1)
    try:
        dmp = DistributedModelParallel(NASRecModelTrain(trained.model),
                                       device=torch.device("cpu"))
        load_embedding_tables(dmp, tables)
        metrics = evaluate(dmp, loader)
    finally:
        teardown(context)
    assert metrics == pytest.approx(expected, rel=1e-9)
