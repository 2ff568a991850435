"""The Pareto front of (cost, loss) points: both minimised."""

from __future__ import annotations

import math
from typing import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points, by increasing cost.

    A point is dominated when another is no worse in both coordinates and better in one.
    Of identical points only the first is kept; points with a NaN coordinate never are.

    Example::

        pareto_front([(1, 5), (2, 3), (3, 4), (2, 3)])  # [0, 1]
    """
    order = sorted(
        (i for i, (cost, loss) in enumerate(points)
         if not (math.isnan(cost) or math.isnan(loss))),
        key=lambda i: (points[i][0], points[i][1], i))
    front: list[int] = []
    best_loss = math.inf
    for index in order:
        loss = points[index][1]
        if loss < best_loss:  # cheaper-or-equal points all have a higher loss
            front.append(index)
            best_loss = loss
    return front
