"""The search strategies by name: what `nasrec search --method` and `search.method` of an
experiment config accept.

A strategy is a `SearchBase` subclass whose `kind` is its name here; it implements
`step(generation)`, and `from_settings` when it reads stage settings beyond the common ones
(see `SearchBase`). Adding one: its module, its entry below, its test.

Plain Python (no torch).
"""

from __future__ import annotations

from nasrec_torchrec.search.base import SearchBase
from nasrec_torchrec.search.evolution import RegularizedEvolution
from nasrec_torchrec.search.local_search import LocalSearch
from nasrec_torchrec.search.random_search import RandomSearch

SEARCH_STRATEGIES: dict[str, type[SearchBase]] = {
    strategy.kind: strategy for strategy in (RegularizedEvolution, RandomSearch, LocalSearch)
}

