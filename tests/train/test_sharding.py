"""The trainer's table sharding policy: CPU Adam, a forced sharding type, row-wise plans."""

from __future__ import annotations

import pytest
import torch
from toy_training import toy_schema

from nasrec_torchrec.embeddings import build_embedding_bag_collection
from nasrec_torchrec.errors import NASRecError
from nasrec_torchrec.train.sharding import check_table_sharding, table_sharding

CPU = torch.device("cpu")


def test_cpu_adam_keeps_every_table_data_parallel_with_the_dense_kernel():
    schema = toy_schema()
    ebc = build_embedding_bag_collection(schema, 4, None)
    constraints, plan = table_sharding(ebc, schema.sparse_names, "adam", None, 1, CPU)
    assert plan is None and set(constraints) == {"t_c0", "t_c1", "t_c2", "t_c3"}
    assert all(c.sharding_types == ["data_parallel"] and c.compute_kernels == ["dense"]
               for c in constraints.values())
    with pytest.raises(NASRecError, match="data-parallel.*--sharding-type table_wise"):
        check_table_sharding("adam", "table_wise", CPU)
    check_table_sharding("adam", "table_wise", torch.device("cuda"))  # fused ADAM there


def test_a_forced_sharding_type_constrains_every_table_to_the_fused_kernel():
    schema = toy_schema()
    ebc = build_embedding_bag_collection(schema, 4, None)
    constraints, plan = table_sharding(ebc, schema.sparse_names, "adagrad", "column_wise", 2,
                                       CPU)
    assert plan is None and set(constraints) == {f"t_{name}" for name in schema.sparse_names}
    assert all(c.sharding_types == ["column_wise"] and c.compute_kernels == ["fused"]
               for c in constraints.values())
    assert table_sharding(ebc, schema.sparse_names, "adagrad", None, 2, CPU) == (None, None)


def test_row_wise_is_a_hand_written_plan(context):
    schema = toy_schema()
    ebc = build_embedding_bag_collection(schema, 4, None)
    constraints, plan = table_sharding(ebc, schema.sparse_names, "adagrad", "row_wise", 1, CPU)
    assert constraints is None
    (module_plan,) = plan.plan.values()
    assert {p.sharding_type for p in module_plan.values()} == {"row_wise"}
