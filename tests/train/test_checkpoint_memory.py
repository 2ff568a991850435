"""A checkpoint of tables that view one flat FBGEMM buffer writes them without copies."""

from __future__ import annotations

import os

import pytest
import torch
from toy_training import toy_dmp, toy_schema

from nasrec_torchrec.train.checkpoint import load_checkpoint, save_checkpoint
from nasrec_torchrec.train.distributed import init_distributed, teardown
from nasrec_torchrec.train.optimizers import build_optimizer


@pytest.fixture(scope="module")
def context():
    context = init_distributed("cpu", num_threads=1)
    yield context
    teardown(context)


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM"))


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_saving_adds_no_copy_of_the_tables_and_reloads_exactly(context, tmp_path):
    schema = toy_schema((1_000_000, 1_000_000))  # 2 x 61 MB of weights, as much of state
    dmp = toy_dmp(schema, embedding_dim=16)
    optimizer = build_optimizer(dmp)
    weights_kb = sum(value.local_shards()[0].tensor.nbytes for key, value in
                     dmp.state_dict().items() if ".embedding_bags." in key) // 1024
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak RSS to the current RSS
    before = _peak_rss_kb()
    path = save_checkpoint(str(tmp_path), 1, dmp, optimizer, {})
    # DCP alone cloned every table view (and its Adagrad state) and kept the clones
    assert _peak_rss_kb() - before < weights_kb // 4

    saved = {key: value.local_shards()[0].tensor.clone()
             for key, value in dmp.state_dict().items() if ".embedding_bags." in key}
    other = toy_dmp(schema, embedding_dim=16, seed=1)
    assert not any(torch.equal(value.local_shards()[0].tensor, saved[key])
                   for key, value in other.state_dict().items() if key in saved)
    load_checkpoint(path, other, build_optimizer(other))
    for key, value in other.state_dict().items():
        if key in saved:
            assert torch.equal(value.local_shards()[0].tensor, saved[key])
