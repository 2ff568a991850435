"""The NASRec building operators, each built at a maximum size and run at a chosen one.

Semantics: docs/search_space.md. The same classes serve the supernet (maximum sizes, sliced
on every call) and `NASRecNet` (built at the exact sizes of one architecture), so the two
compute the same function by construction; `sliced_state` gives the exact-size weights.

One module per operator family; each registers its classes under their names in the space's
operator table (`register_operator`). Every module of this package is imported here, so an
operator's module is all the nn side of a new operator needs.
"""

import importlib
import pkgutil

from nasrec_torchrec.nn.operators.base import (
    OPERATOR_CLASSES,
    Operator,
    OperatorInputs,
    OperatorPlan,
    OperatorShape,
    State,
    build_operator,
    register_operator,
)
from nasrec_torchrec.nn.operators.block_level import FM, ProjectConcat, fm_interaction
from nasrec_torchrec.nn.operators.cross import Cross
from nasrec_torchrec.nn.operators.dense import FC, Gating, Sum
from nasrec_torchrec.nn.operators.dot_product import (
    DotProduct,
    dot_product_rows,
    pair_count,
    pairwise_products,
)
from nasrec_torchrec.nn.operators.flat_fc import FlatFC
from nasrec_torchrec.nn.operators.fm import FactorizationMachine
from nasrec_torchrec.nn.operators.sparse import EmbedFC, SelfAttention, self_attention


def _import_operator_modules() -> None:
    """Import every module of this package: each registers the operators it defines."""
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        importlib.import_module(f"{__name__}.{module}")


_import_operator_modules()

__all__ = [
    "FC",
    "FM",
    "OPERATOR_CLASSES",
    "Cross",
    "DotProduct",
    "EmbedFC",
    "FactorizationMachine",
    "FlatFC",
    "Gating",
    "Operator",
    "OperatorInputs",
    "OperatorPlan",
    "OperatorShape",
    "ProjectConcat",
    "SelfAttention",
    "State",
    "Sum",
    "build_operator",
    "dot_product_rows",
    "fm_interaction",
    "pair_count",
    "pairwise_products",
    "register_operator",
    "self_attention",
]
