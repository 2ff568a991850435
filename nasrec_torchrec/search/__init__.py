"""Architecture search on a trained supernet: subnet scoring, regularized evolution, random
search, Pareto fronts and the ranking study.

`run.run_search(SearchRun(...))` is the search stage (`nasrec search` calls it): the settings
are in `settings`, the strategies by name in `strategies` (each a `base.SearchBase` with its
own `step`), the files a search writes in `outputs`. `base`, `evolution`, `random_search`,
`strategies`, `settings`, `outputs` and `pareto` are plain Python on `Architecture` values (no
torch); `loading` reads a trained supernet and `scoring` scores candidates from it in this
process.
"""
