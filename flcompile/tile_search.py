"""Unequal tiles: a local search over the row and column boundaries of F (`--tiles free`,
docs/design.md §5).

`search_boundaries` starts from one tiling (the uniform grid) and moves one row or column
boundary at a time by ±step, keeping the best move of each round while it improves the
score; when no move improves, the steps halve, down to one pixel. Every candidate is tiled
by the same receptive-field code (`tiling_at`, sharing the F's per-interval memo), so its
costs are as exact as the uniform grid's. `refine_boundaries` runs it on a search's best
(F, grid) choices at one link, each candidate scored by a solver's simulated makespan, and
hands the tilings it finds to the search's tracker, solved by the strategy's own solver.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tqdm import tqdm

from flcompile.costs.link import LinkModel
from flcompile.costs.table import CostTable
from flcompile.costs.tiles import tile_costs
from flcompile.passes.receptive_field import AxisCache, EmptyRegionError, Tiling, tiling_at
from flcompile.plans import FusedPlan
from flcompile.schedule import Schedule
from flcompile.simulate import makespan
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt_heuristic

if TYPE_CHECKING:
    from flcompile.search import GridChoice, SearchSpace

# The passes of `refine_boundaries` per strategy: the solver that scores each candidate
# tiling, how many of the best (F, grid) choices it searches, and its budget per choice in
# paths scored (a search scores at most budget / P tilings, and at most MAX_EVALUATIONS).
# MW is cheap and searches more choices; opt's heuristic (opt without its exact search)
# follows the exact solvers' scores more closely, costs more per path, and searches the
# few best.
PASSES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "mw": (("mw", 8, 2000),),
    "best": (("mw", 8, 2000), ("opt-heuristic", 4, 480)),
    "opt": (("mw", 8, 2000), ("opt-heuristic", 4, 480)),
    "bf": (("mw", 8, 2000), ("opt-heuristic", 4, 480)),
}
# The same under edge-side reuse, where every score re-runs whole schedules through the
# reuse geometry (ten times the work per path): fewer choices and smaller budgets keep the
# default search within seconds, for gains that are smaller there (under 1 % on the zoo).
PASSES_REUSE: dict[str, tuple[tuple[str, int, int], ...]] = {
    "mw": (("mw", 4, 400),),
    "best": (("mw", 4, 400),),
    "opt": (("mw", 4, 400),),
    "bf": (("mw", 4, 400),),
}
INNER_SOLVERS: dict[str, Callable[[CostTable], Schedule]] = {
    "mw": solve_mw,
    "opt-heuristic": solve_opt_heuristic,
}
# The solver each strategy solves the tilings found with (`--solver best` ends with opt).
FINAL_SOLVER = {"best": "opt", "mw": "mw", "opt": "opt", "bf": "bf"}
# The most tilings one boundary search scores.
MAX_EVALUATIONS = 120
# A move must improve the score by more than this fraction to be taken.
REL_IMPROVEMENT = 1e-9

Bounds = tuple[tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True)
class BoundaryResult:
    """What one boundary search found.

    Attributes:
        tiling: the best tiling scored (the start when nothing beat it).
        score: its score.
        evaluated: how many tilings were scored, the start included.
    """

    tiling: Tiling
    score: float
    evaluated: int


def _moves(bounds: Bounds, steps: tuple[int, int]) -> list[Bounds]:
    """Every bounds one boundary move of ±step away whose intervals stay non-empty."""
    result = []
    for axis, step in enumerate(steps):
        b = bounds[axis]
        for i, delta in itertools.product(range(1, len(b) - 1), (-step, step)):
            moved = b[i] + delta
            if b[i - 1] < moved < b[i + 1]:
                new = (*b[:i], moved, *b[i + 1 :])
                result.append((new, bounds[1]) if axis == 0 else (bounds[0], new))
    return result


def _first_step(bounds: tuple[int, ...]) -> int:
    """Half the smallest interval: the first move can shift a boundary that far."""
    return max(1, min(b - a for a, b in itertools.pairwise(bounds)) // 2)


def search_boundaries(
    start: Tiling,
    score: Callable[[Tiling], float],
    cache: AxisCache | None = None,
    *,
    max_evaluations: int = MAX_EVALUATIONS,
) -> BoundaryResult:
    """Local search over the boundaries of `start`'s grid, minimising `score`.

    Each round scores every move of one boundary by ±step (per axis) and takes the best if
    it improves; a round without improvement halves the steps, and one at steps of 1 ends
    the search, as does `max_evaluations`. A tiling with a tile that reads only padding
    is skipped.

    Args:
        start: the seed tiling (its grid shape is kept).
        score: the value to minimise, e.g. a solver's simulated makespan.
        cache: the block's per-axis region memo.
        max_evaluations: the most tilings scored, the start included.

    Returns:
        The best tiling found, its score and the work done.
    """
    block = start.block
    best, best_score = start, score(start)
    seen: set[Bounds] = {start.bounds}
    steps = (_first_step(start.bounds[0]), _first_step(start.bounds[1]))
    evaluated = 1
    while evaluated < max_evaluations:
        round_best: tuple[float, Tiling] | None = None
        for bounds in _moves(best.bounds, steps):
            if bounds in seen or evaluated >= max_evaluations:
                continue
            seen.add(bounds)
            try:
                tiling = tiling_at(block, *bounds, cache)
            except EmptyRegionError:
                continue
            value = score(tiling)
            evaluated += 1
            if round_best is None or value < round_best[0]:
                round_best = (value, tiling)
        if round_best is not None and round_best[0] < best_score * (1 - REL_IMPROVEMENT):
            best_score, best = round_best
        elif steps == (1, 1):
            break
        else:
            steps = (max(1, steps[0] // 2), max(1, steps[1] // 2))
    return BoundaryResult(best, best_score, evaluated)


def free_shortlist(scored: list[tuple[float, int, FusedPlan]], count: int) -> list[int]:
    """The indices of the `count` best-scored choices with more than one path."""
    ranked = sorted(scored, key=lambda t: (t[0], t[1]))
    chosen = [i for s, i, e in ranked if math.isfinite(s) and e.tiling.num_paths > 1]
    return chosen[:count]


def refine_boundaries(
    space: SearchSpace,
    link: LinkModel,
    strategy: str,
    scored: list[tuple[float, int, FusedPlan]],
    run: Callable[[FusedPlan, str], float],
    *,
    progress: bool = False,
) -> int:
    """Search the boundaries of the best (F, grid) choices; solve each result with `run`.

    Each of the strategy's `PASSES` searches its shortlist of `scored`, scoring candidates
    with its solver; every unequal tiling found is solved with `FINAL_SOLVER[strategy]`
    through `run`, which keeps it when it beats the best plan so far.

    Args:
        space: the search space (`scored` indexes its choices).
        link: the link.
        strategy: the search strategy.
        scored: (best score so far, index in space.choices, plan) per choice.
        run: solves a plan with a named solver and keeps it if best (`PlanTracker.run`).
        progress: show a progress bar.

    Returns:
        How many tilings the boundary searches scored.
    """
    work = [
        (inner, budget, i)
        for inner, count, budget in (PASSES_REUSE if space.reuse else PASSES)[strategy]
        for i in free_shortlist(scored, count)
    ]
    evaluated = 0
    bar = tqdm(work, desc="boundaries", unit="grid", disable=not progress, leave=False)
    for inner, budget, index in bar:
        choice = space.choices[index]
        solver = INNER_SOLVERS[inner]
        most = min(MAX_EVALUATIONS, max(2, budget // choice.tiling.num_paths))

        def plan_of(tiling: Tiling, choice: GridChoice = choice) -> FusedPlan:
            moved = replace(choice, tiling=tiling, costs=tile_costs(tiling, choice.fused.costs))
            table = space.table(moved, link)
            return FusedPlan(moved.candidate, tiling, moved.costs, table, Schedule((), ()), "", 0)

        def score(tiling: Tiling, solver: Callable[[CostTable], Schedule] = solver) -> float:
            table = plan_of(tiling).table
            schedule = solver(table)
            return makespan(table, schedule.order, schedule.cuts)

        found = search_boundaries(choice.tiling, score, choice.fused.cache, max_evaluations=most)
        evaluated += found.evaluated
        if not found.tiling.uniform:
            run(plan_of(found.tiling), FINAL_SOLVER[strategy])
    return evaluated
