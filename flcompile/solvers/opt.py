"""opt: our solver; exact where BF runs, a fast heuristic beyond, never worse than MW.

1. Start from MW's schedule (so opt is never worse than MW).
2. Heuristic (`flcompile.solvers.heuristic`): candidates from uniform cuts and the fluid
   bound's cut mix, ordered by Johnson's rule / CDS, improved by local search over cut
   changes, swaps and moves.
3. If BF would accept the table (`bf_search_size` <= `BF_MAX_STATES`), the exact branch and
   bound (`flcompile.solvers.exact`) runs from that incumbent, so opt equals BF there.
   Otherwise, on tables of at most `OPT_BUDGET_PATHS` paths (grids up to 3x3), the same
   search runs with a budget of `exact_nodes` nodes (adds about 25-80 ms): on realistic 2x3
   to 3x3 tables it found schedules up to 2 % better than the local search, while on larger
   grids it rarely improved anything in that budget.
"""

from __future__ import annotations

from flcompile.costs.table import CostTable
from flcompile.errors import InternalError
from flcompile.schedule import Schedule
from flcompile.simulate import makespan
from flcompile.solvers.bf import BF_MAX_STATES
from flcompile.solvers.exact import branch_and_bound, search_size
from flcompile.solvers.heuristic import heuristic_schedule
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.pareto import pareto_cuts

OPT_EXACT_NODES = 1e5
OPT_BUDGET_PATHS = 9


def solve_opt_proving(
    table: CostTable, *, exact_nodes: float = OPT_EXACT_NODES
) -> tuple[Schedule, bool]:
    """`solve_opt`'s schedule, and whether its exact search proved it optimal.

    Where BF would run, the exact search always completes; on a table BF refuses, the
    budgeted search proves the optimum when it completes within its node budget.

    Args:
        table: per-path, per-cut seconds for one fused tensor and grid.
        exact_nodes: node budget of the exact search on tables BF would refuse (0 = skip).

    Returns:
        (a schedule that finishes no later than MW's, True if no schedule finishes earlier).

    Raises:
        InternalError: the searches, which start from MW's schedule, returned a worse one.
    """
    mw = solve_mw(table)
    options = pareto_cuts(table)
    best = heuristic_schedule(table, options, [mw])
    proven = False
    if search_size(options) <= BF_MAX_STATES:
        best, proven = branch_and_bound(table, options, best).schedule, True
    elif table.num_paths <= OPT_BUDGET_PATHS and exact_nodes > 0:
        result = branch_and_bound(table, options, best, node_limit=exact_nodes)
        best, proven = result.schedule, result.optimal
    mw_s, best_s = makespan(table, mw.order, mw.cuts), makespan(table, best.order, best.cuts)
    if mw_s < best_s:
        raise InternalError(f"opt's schedule finishes at {best_s}, after MW's at {mw_s}")
    return best, proven


def solve_opt_heuristic(table: CostTable) -> Schedule:
    """Steps 1 and 2 of opt, without the exact search: MW's schedule, improved.

    Args:
        table: per-path, per-cut seconds for one fused tensor and grid.

    Returns:
        A schedule that finishes no later than MW's.
    """
    return heuristic_schedule(table, pareto_cuts(table), [solve_mw(table)])


def solve_opt(table: CostTable, *, exact_nodes: float = OPT_EXACT_NODES) -> Schedule:
    """Choose the order and cuts of every path: optimal where BF runs, else heuristic.

    Args:
        table: per-path, per-cut seconds for one fused tensor and grid.
        exact_nodes: node budget of the exact search on tables BF would refuse (0 = skip).

    Returns:
        A schedule that finishes no later than MW's.

    Raises:
        InternalError: the searches, which start from MW's schedule, returned a worse one.
    """
    return solve_opt_proving(table, exact_nodes=exact_nodes)[0]
