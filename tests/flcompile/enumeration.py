"""The optimum of a cost table by plain enumeration, which the solver and bound tests trust."""

from __future__ import annotations

import itertools

from flcompile.costs.table import CostTable
from flcompile.simulate import makespan


def enumerate_all(table: CostTable) -> float:
    """The optimum by scoring every order and every cut (no pruning at all)."""
    paths = range(table.num_paths)
    return min(
        makespan(table, order, cuts)
        for order in itertools.permutations(paths)
        for cuts in itertools.product(range(table.num_cuts), repeat=table.num_paths)
    )
