"""Brute Force (BF): the exact optimum over every order and every cut, for small instances.

The paper's BF enumerates every path order and every cut of every path and keeps the
schedule with the least inference time. Here the enumeration is the exact branch and bound
of `flcompile.solvers.exact`, seeded with the heuristic's schedule (itself seeded with
MW's), and scored by the simulator; it returns the same optimum as plain enumeration, only
sooner. It still grows like P!, so it refuses a table whose search size (below) exceeds
`max_states`.

BF_MAX_STATES: the worst case is a search whose bounds prune nothing. Measured on a busy
2-core machine (pure numpy, one core), such a search expands about 1.1e6-2.6e6 inner nodes/s
and scores about 1e7 leaves/s. Inner nodes dominate when paths have few cuts: the slowest
admitted shape, P = 11 with one cut each (11! ≈ 4e7 states), took 78 s; P = 9 with two or
three cuts per path (7e7 states, refused) took 48 s; P = 4 with 30 cuts each (1.9e7, the
paper's BF(2x2) on a real block) takes about 2 s. With the bounds, real tables within the
limit finish in milliseconds to a second.
"""

from __future__ import annotations

from flcompile.costs.table import CostTable
from flcompile.errors import SolverLimitError
from flcompile.schedule import Schedule
from flcompile.solvers.exact import branch_and_bound, search_size
from flcompile.solvers.heuristic import heuristic_schedule
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.pareto import pareto_cuts

BF_MAX_STATES = 5e7


def bf_search_size(table: CostTable) -> float:
    """BF's search size: P! × Π_p (number of non-dominated cuts of path p).

    Args:
        table: the cost table.

    Returns:
        The number of (order, cuts) combinations left after Pareto pruning.
    """
    return search_size(pareto_cuts(table))


def solve_bf(table: CostTable, *, max_states: float = BF_MAX_STATES) -> Schedule:
    """The schedule with the least simulated finish time over all orders and cuts.

    Args:
        table: per-path, per-cut seconds for one fused tensor and grid.
        max_states: refuse tables whose search size exceeds this.

    Returns:
        An optimal schedule.

    Raises:
        SolverLimitError: the search size exceeds `max_states`.
    """
    options = pareto_cuts(table)
    size = search_size(options)
    if size > max_states:
        counts = [len(ks) for ks in options]
        raise SolverLimitError(
            f"bf: {table.num_paths} paths with {counts} non-dominated cuts give "
            f"P!·Πcuts = {size:.3g} schedules, over the bound {max_states:.3g}",
            hint="use --solver opt or a smaller --grid",
        )
    seed = heuristic_schedule(table, options, [solve_mw(table)])
    return branch_and_bound(table, options, seed).schedule
