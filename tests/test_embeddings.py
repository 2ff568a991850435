"""Embedding tables from a schema: capped and full tables share one code path."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torchrec.distributed.planner.types import ParameterConstraints
from torchrec.distributed.types import ShardingPlan
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "train"))
from toy_training import ToyBody, run_ranks, toy_schema  # noqa: E402

from nasrec_torchrec.data.schema import table_row  # noqa: E402
from nasrec_torchrec.embeddings import (  # noqa: E402
    build_embedding_bag_collection,
    embedding_bag_configs,
    init_embedding_weights,
    load_embedding_tables,
    manual_plan,
    plan_summary,
    shard_model,
)
from nasrec_torchrec.errors import NASRecError  # noqa: E402
from nasrec_torchrec.nn.model import NASRecModel  # noqa: E402
from nasrec_torchrec.train.distributed import init_distributed, teardown  # noqa: E402

CAP = 100
DIM = 8


@pytest.fixture(scope="module")
def context():
    context = init_distributed("cpu", num_threads=1)
    yield context
    teardown(context)


def test_configs_one_table_per_feature_capped_or_full():
    schema = toy_schema()
    capped = embedding_bag_configs(schema, embedding_dim=DIM, embedding_cap=CAP)
    full = embedding_bag_configs(schema, embedding_dim=DIM, embedding_cap=None)
    assert [c.name for c in capped] == [f"t_{n}" for n in schema.sparse_names]
    assert [c.feature_names for c in capped] == [[n] for n in schema.sparse_names]
    assert [c.num_embeddings for c in capped] == [min(f.num_rows, CAP) for f in schema.sparse]
    assert [c.num_embeddings for c in full] == [f.num_rows for f in schema.sparse]
    assert {c.embedding_dim for c in capped + full} == {DIM}


def test_configs_reject_bad_dim_and_cap():
    with pytest.raises(NASRecError):
        embedding_bag_configs(toy_schema(), embedding_dim=0)
    with pytest.raises(NASRecError):
        embedding_bag_configs(toy_schema(), embedding_cap=1)


def test_collection_is_built_on_meta_device():
    ebc = build_embedding_bag_collection(toy_schema(), DIM, embedding_cap=None)
    assert {p.device.type for p in ebc.parameters()} == {"meta"}


def _sharded(schema, cap, seed=0, sharding_types=None, manual=None):
    torch.manual_seed(seed)
    ebc = build_embedding_bag_collection(schema, DIM, embedding_cap=cap)
    model = NASRecModel(ebc, len(schema.dense), ToyBody(len(schema.dense), len(schema.sparse), DIM))
    constraints, plan = None, None
    if sharding_types:
        constraints = {f"t_{f.name}": ParameterConstraints(sharding_types=sharding_types)
                       for f in schema.sparse}
    if manual:
        plan = manual_plan(model, manual, dist.get_world_size(), torch.device("cpu"))
    return shard_model(model, torch.device("cpu"), constraints=constraints, plan=plan)


def _table_sizes(dmp):
    state = dmp.state_dict()
    return {key.split(".")[-2]: tuple(state[key].size()) for key in state
            if ".embedding_bags." in key}


def test_capped_and_full_lookups_agree_below_the_cap(context):
    schema = toy_schema()
    capped, full = _sharded(schema, CAP), _sharded(schema, None)
    assert _table_sizes(capped) == {f"t_{f.name}": (min(f.num_rows, CAP), DIM)
                                    for f in schema.sparse}
    assert _table_sizes(full) == {f"t_{f.name}": (f.num_rows, DIM) for f in schema.sparse}

    generator = torch.Generator().manual_seed(1)
    weights = {f"t_{f.name}": torch.randn(f.num_rows, DIM, generator=generator)
               for f in schema.sparse}
    load_embedding_tables(full, weights)
    load_embedding_tables(capped, {name: w[:CAP] for name, w in weights.items()})

    ids = {f.name: np.arange(f.num_rows) for f in schema.sparse}  # every id, one per sample
    batch = max(f.num_rows for f in schema.sparse)

    def kjt(cap):
        values, lengths = [], []
        for f in schema.sparse:
            rows = schema.table_rows(f.name, cap)
            padded = np.resize(ids[f.name], batch)
            values.append(table_row(padded, rows))
            lengths.append(np.ones(batch, dtype=np.int32))
        return KeyedJaggedTensor.from_lengths_sync(
            keys=schema.sparse_names, values=torch.from_numpy(np.concatenate(values)),
            lengths=torch.from_numpy(np.concatenate(lengths)))

    with torch.no_grad():
        pooled_capped = capped.module.embed(kjt(CAP))
        pooled_full = full.module.embed(kjt(None))
    for f_index, f in enumerate(schema.sparse):
        rows = np.resize(ids[f.name], batch)
        below = torch.from_numpy(rows < CAP)
        torch.testing.assert_close(pooled_capped[below, f_index], pooled_full[below, f_index])
        # rarer ids fall on the hashed rows of the capped table
        expected = weights[f"t_{f.name}"][table_row(rows, min(f.num_rows, CAP))]
        torch.testing.assert_close(pooled_capped[:, f_index], expected)


def test_tables_use_the_fused_kernel_and_are_never_data_parallel(context):
    dmp = _sharded(toy_schema(), CAP)
    for plan in dmp.plan.plan.values():
        for table, parameter_plan in plan.items():
            assert parameter_plan.compute_kernel == "fused", table
            assert parameter_plan.sharding_type != "data_parallel", table
    assert len(list(dmp.fused_optimizer.state_dict()["state"])) == len(toy_schema().sparse)


def test_init_is_seeded(context):
    schema = toy_schema()
    first, second, other = _sharded(schema, CAP), _sharded(schema, CAP), _sharded(schema, CAP)
    init_embedding_weights(first, seed=3)
    init_embedding_weights(second, seed=3)
    init_embedding_weights(other, seed=4)
    for key, value in first.state_dict().items():
        if ".embedding_bags." in key:
            a = value.local_shards()[0].tensor
            assert torch.equal(a, second.state_dict()[key].local_shards()[0].tensor)
            assert not torch.equal(a, other.state_dict()[key].local_shards()[0].tensor)
            rows = value.size()[0]
            assert a.abs().max() <= rows ** -0.5


def test_init_values_follow_the_seeded_block_rule(context):
    """A table of 150k rows spans three 65536-row blocks (the last one partial); each block
    is `2 u - 1` scaled by 1/sqrt(rows), u from a generator seeded by (seed, table, block)."""
    from nasrec_torchrec.embeddings import _block_seed

    schema = toy_schema((150_000, 7))
    dmp = _sharded(schema, None)
    init_embedding_weights(dmp, seed=11)
    state = dmp.state_dict()
    for feature in schema.sparse:
        name = f"t_{feature.name}"
        blocks = [torch.rand(min(65536, feature.num_rows - start), DIM,
                             generator=torch.Generator().manual_seed(_block_seed(11, name, b)))
                  for b, start in enumerate(range(0, feature.num_rows, 65536))]
        expected = (torch.cat(blocks) * 2 - 1) * feature.num_rows ** -0.5
        key = next(k for k in state if k.endswith(f".{name}.weight"))
        assert torch.equal(state[key].local_shards()[0].tensor, expected)


def test_normal_init_equals_one_draw_of_the_whole_table(context):
    """With `std`, a table is drawn block by block from one generator seeded by (seed, table)
    and holds the values of one `torch.randn` of the whole table times std (the earlier
    formula): 150k rows end on a partial block, 131073 rows on a block of 8 values (fewer than
    the 16 CPU `normal_` fills at a time, merged into the block before)."""
    import hashlib

    schema = toy_schema((150_000, 131_073, 7))
    dmp = _sharded(schema, None)
    init_embedding_weights(dmp, seed=11, std=0.01)
    state = dmp.state_dict()
    for feature in schema.sparse:
        name = f"t_{feature.name}"
        digest = hashlib.blake2b(f"11:{name}".encode(), digest_size=7).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest, "little"))
        expected = torch.randn(feature.num_rows, DIM, generator=generator) * 0.01
        key = next(k for k in state if k.endswith(f".{name}.weight"))
        assert torch.equal(state[key].local_shards()[0].tensor, expected), name


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM"))


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_init_adds_no_table_sized_transient(context):
    """Initialising a 128 MB table writes it block by block: the peak RSS grows by a few
    MB, not by copies of the table (earlier: three table-sized temporaries)."""
    dmp = _sharded(toy_schema((2_000_000,)), None)
    init_embedding_weights(dmp, seed=0)  # first touch of every page of the tables
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak RSS to the current RSS
    before = _peak_rss_kb()
    init_embedding_weights(dmp, seed=1)
    table_kb = 2_000_000 * DIM * 4 // 1024
    assert _peak_rss_kb() - before < table_kb // 4


def _gather_initialised_tables(out_path):
    context = init_distributed("cpu", num_threads=1)
    try:
        for sharding_type in SHARDING_TYPES:
            if sharding_type == "row_wise":  # the planner never proposes it on CPU
                dmp = _sharded(toy_schema(), None, manual="row_wise")
            else:
                dmp = _sharded(toy_schema(), None, sharding_types=[sharding_type])
            assert sharding_type in str(dmp.plan)
            for std in INIT_STDS:
                init_embedding_weights(dmp, seed=5, std=std)
                gathered = {}
                for key, value in dmp.state_dict().items():
                    if ".embedding_bags." in key:
                        full = torch.zeros(tuple(value.size()))
                        value.gather(dst=0, out=full if context.rank == 0 else None)
                        gathered[key] = full
                if context.rank == 0:
                    torch.save(gathered, f"{out_path}.{sharding_type}.{std}")
    finally:
        teardown(context)


SHARDING_TYPES = ("table_wise", "column_wise", "row_wise")
INIT_STDS = (None, 0.01)  # uniform, normal


def test_init_is_the_same_for_any_sharding_and_world_size(context, tmp_path):
    one_rank = _sharded(toy_schema(), None)
    run_ranks(2, _gather_initialised_tables, str(tmp_path / "tables"))
    for std in INIT_STDS:
        init_embedding_weights(one_rank, seed=5, std=std)
        state = one_rank.state_dict()
        for sharding_type in SHARDING_TYPES:
            gathered = torch.load(str(tmp_path / "tables") + f".{sharding_type}.{std}")
            assert set(gathered) == {k for k in state if ".embedding_bags." in k}
            for key, full in gathered.items():
                torch.testing.assert_close(full, state[key].local_shards()[0].tensor,
                                           rtol=0, atol=0, msg=f"{sharding_type} {std} {key}")


@pytest.mark.parametrize("sharding_type", ["table_wise", "column_wise", "row_wise"])
def test_manual_plan_puts_every_table_under_one_sharding_type(context, sharding_type):
    dmp = _sharded(toy_schema(), CAP, manual=sharding_type)
    for plan in dmp.plan.plan.values():
        assert {p.sharding_type for p in plan.values()} == {sharding_type}
        assert {p.compute_kernel for p in plan.values()} == {"fused"}


def test_plan_summary_counts_tables_per_sharding_type_and_ranks():
    from torchrec.distributed.types import EmbeddingModuleShardingPlan, ParameterSharding

    tables = EmbeddingModuleShardingPlan({
        "t_a": ParameterSharding("table_wise", "fused", ranks=[0]),
        "t_b": ParameterSharding("table_wise", "fused", ranks=[1]),
        "t_c": ParameterSharding("column_wise", "fused", ranks=[0, 1]),
    })
    one_table = EmbeddingModuleShardingPlan({"t_d": ParameterSharding("table_wise", "fused",
                                                                       ranks=[2])})
    assert plan_summary(ShardingPlan({"a": tables, "b": one_table})) \
        == "4 tables (1 column_wise, 3 table_wise) on 3 ranks"
    assert plan_summary(ShardingPlan({"b": one_table})) == "1 table (1 table_wise) on 1 rank"


def test_manual_plan_rejects_unknown_sharding_type(context):
    ebc = build_embedding_bag_collection(toy_schema(), DIM, embedding_cap=CAP)
    with pytest.raises(NASRecError, match="data_parallel"):
        manual_plan(ebc, "data_parallel", 1, torch.device("cpu"))


def test_memory_budget_too_small_is_a_clear_error(context):
    schema = toy_schema((50_000,) * 4)
    torch.manual_seed(0)
    need = 4 * 50_000 * DIM * 4 * 2  # weights + exact Adagrad state
    ebc = build_embedding_bag_collection(schema, DIM, embedding_cap=None)
    model = NASRecModel(ebc, 3, ToyBody(3, 4, DIM))
    with pytest.raises(NASRecError, match="memory budget of 0.01 GB per rank.*need about 0.01"):
        shard_model(model, torch.device("cpu"), memory_budget_bytes=need // 2)
    ebc = build_embedding_bag_collection(schema, DIM, embedding_cap=None)
    model = NASRecModel(ebc, 3, ToyBody(3, 4, DIM))
    dmp = shard_model(model, torch.device("cpu"), memory_budget_bytes=need * 2)
    assert len(dmp.plan.plan) == 1
