"""Architecture search on a trained supernet: subnet scoring, regularized evolution, random
search, Pareto fronts and the ranking study.

`evolution`, `random_search` and `pareto` are plain Python on `Architecture` values (no torch);
`scoring` loads a supernet and scores candidates in this process.
"""
