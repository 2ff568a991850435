"""Pareto front of (cost, loss) on fixed points."""

from __future__ import annotations

import math

from nasrec_torchrec.search.pareto import pareto_front


def test_pareto_front_of_fixed_points():
    points = [(1.0, 0.50), (2.0, 0.45), (1.5, 0.48), (3.0, 0.46), (2.5, 0.44),
              (0.5, 0.60), (2.0, 0.47), (4.0, 0.44), (1.0, 0.50)]
    # (3.0, .46), (2.0, .47), (4.0, .44) are dominated; (1.0, .50) twice: the first kept
    assert pareto_front(points) == [5, 0, 2, 1, 4]


def test_pareto_front_edge_cases():
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([(1.0, math.nan), (2.0, 1.0)]) == [1]
    # brute force agrees on a grid
    points = [(float(c), float((c * 7 + l * 3) % 5)) for c in range(6) for l in range(4)]
    brute = [i for i, (c, l) in enumerate(points)
             if not any((c2 <= c and l2 <= l and (c2, l2) != (c, l)) or
                        ((c2, l2) == (c, l) and j < i) for j, (c2, l2) in enumerate(points))]
    assert pareto_front(points) == sorted(brute, key=lambda i: points[i])
