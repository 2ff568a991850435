"""The NASRec search space as plain values: spaces, architectures, samplers, mutations.

Pure Python: nothing here imports torch, so evolution and tooling run without it.
"""

from nasrec_torchrec.space.architecture import DEAD_BLOCK, Architecture, Block, Liveness
from nasrec_torchrec.space.mutation import (
    MUTATION_KINDS,
    apply_mutation,
    available_kinds,
    mutate,
    mutation_kinds,
)
from nasrec_torchrec.space.official import (
    OFFICIAL_NODES,
    OFFICIAL_SPACES,
    from_official,
    load_architecture,
    load_official,
    to_official,
)
from nasrec_torchrec.space.operators import (
    DENSE_OPS,
    OPERATORS,
    SPARSE_OPS,
    OperatorSpec,
    operator_spec,
)
from nasrec_torchrec.space.sampling import (
    STRATEGIES,
    PathSampler,
    WarmupSchedule,
    sample_any_op_any_conn,
    sample_architecture,
    sample_full,
    sample_probes,
    sample_single_op_any_conn,
    sample_single_op_binomial_conn,
    sample_single_op_single_conn,
    sample_sources,
)
from nasrec_torchrec.space.search_space import SPACES, SearchSpace, get_space, load_space
from nasrec_torchrec.space.validation import validate_architecture, validate_structure

__all__ = [
    "DEAD_BLOCK",
    "DENSE_OPS",
    "MUTATION_KINDS",
    "OFFICIAL_NODES",
    "OFFICIAL_SPACES",
    "OPERATORS",
    "SPACES",
    "SPARSE_OPS",
    "STRATEGIES",
    "Architecture",
    "Block",
    "Liveness",
    "OperatorSpec",
    "PathSampler",
    "SearchSpace",
    "WarmupSchedule",
    "apply_mutation",
    "available_kinds",
    "from_official",
    "get_space",
    "load_space",
    "load_architecture",
    "load_official",
    "mutate",
    "mutation_kinds",
    "operator_spec",
    "sample_any_op_any_conn",
    "sample_architecture",
    "sample_full",
    "sample_probes",
    "sample_single_op_any_conn",
    "sample_single_op_binomial_conn",
    "sample_single_op_single_conn",
    "sample_sources",
    "to_official",
    "validate_architecture",
    "validate_structure",
]
