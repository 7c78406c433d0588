"""The plan search: every candidate F × grid, each solved by the chosen solvers, against NFL.

Every plan is scored by the one simulator (`flcompile.simulate`), so scores compare. A plan
with fused layers is kept only when it beats the best single cut (NFL), unless the user
fixed F or the grid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import onnx_graphsurgeon as gs
from tqdm import tqdm

from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.table import CostTable, cost_table
from flcompile.costs.tiles import BlockCosts, TileCosts, block_costs, tile_costs
from flcompile.costs.untiled import Baselines, ModelCosts, baselines
from flcompile.errors import SolverLimitError, UsageError
from flcompile.lower_bound import fluid_lower_bound
from flcompile.passes.fusable import Candidate, FusablePrefix
from flcompile.passes.receptive_field import (
    AxisCache,
    Block,
    EmptyRegionError,
    Tiling,
    make_block,
    make_tiling,
)
from flcompile.schedule import Schedule
from flcompile.simulate import makespan
from flcompile.solvers.bf import solve_bf
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt

log = logging.getLogger(__name__)

SOLVERS: dict[str, Callable[[CostTable], Schedule]] = {
    "mw": solve_mw,
    "opt": solve_opt,
    "bf": solve_bf,
}
SOLVER_CHOICES = ("best", "opt", "mw", "bf", "nfl")
# How many of MW's best (F, grid) choices `--solver best` also solves with opt.
OPT_SHORTLIST = 16


@dataclass(frozen=True)
class SearchOptions:
    """What the search may choose from.

    Attributes:
        solver: one of SOLVER_CHOICES.
        grid: a fixed (rows, columns), or None to search.
        fuse_at: a fixed F tensor name, or None to search.
        max_grid: the largest (rows, columns) searched.
        progress: show a progress bar.
    """

    solver: str = "best"
    grid: tuple[int, int] | None = None
    fuse_at: str | None = None
    max_grid: tuple[int, int] = (8, 8)
    progress: bool = False


@dataclass(frozen=True, eq=False)
class FusedPlan:
    """A plan with fused layers: F, its tiling, the costs, and the schedule.

    Attributes:
        candidate: F and its block.
        tiling: the grid and per-tile regions.
        costs: per-path FLOPs and bytes.
        table: the solvers' seconds table.
        schedule: the order and cuts.
        solver: the solver that found the schedule.
        predicted_s: the simulated latency.
    """

    candidate: Candidate
    tiling: Tiling
    costs: TileCosts
    table: CostTable
    schedule: Schedule
    solver: str
    predicted_s: float


@dataclass(frozen=True)
class SearchStats:
    """How much the search did (plan.json's search{})."""

    candidates_F: int
    grids_tried: int
    plans_evaluated: int
    seconds: float


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The chosen plan, the baselines and the bound.

    Attributes:
        fused: the best plan with fused layers, or None when none was possible.
        use_fused: whether `fused` is the emitted plan (otherwise NFL is).
        baselines: local-only, full offload and NFL.
        lower_bound_s: the smallest fluid bound over all F, and never above NFL.
        best_by_solver: each solver's best predicted latency.
        stats: search effort.
        notes: things the user should hear (why no FL plan, what a forced choice costs).
    """

    fused: FusedPlan | None
    use_fused: bool
    baselines: Baselines
    lower_bound_s: float
    best_by_solver: dict[str, float]
    stats: SearchStats
    notes: tuple[str, ...] = field(default=())

    @property
    def predicted_s(self) -> float:
        """The emitted plan's predicted latency."""
        return self.fused.predicted_s if self.use_fused else self.baselines.nfl.total_s


def grids_for(candidate: Candidate, options: SearchOptions) -> list[tuple[int, int]]:
    """The grids to try for F: the fixed one, or every r×c up to max_grid that fits F."""
    h, w = candidate.shape[2], candidate.shape[3]
    if options.grid is not None:
        return [options.grid] if options.grid[0] <= h and options.grid[1] <= w else []
    rows, cols = min(options.max_grid[0], h), min(options.max_grid[1], w)
    return [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]


def _select_candidates(candidates: list[Candidate], options: SearchOptions) -> list[Candidate]:
    if options.fuse_at is None:
        return candidates
    chosen = [c for c in candidates if c.tensor == options.fuse_at]
    if not chosen:
        names = ", ".join(c.tensor for c in candidates[:8]) or "none"
        more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
        raise UsageError(
            f"--fuse-at '{options.fuse_at}' is not a tensor the model can be fused at",
            hint=f"choose one of: {names}{more} (see -v for why others are not)",
        )
    candidate = chosen[0]
    if options.grid and not grids_for(candidate, options):
        raise UsageError(
            f"--grid {options.grid[0]}x{options.grid[1]} is larger than F "
            f"'{candidate.tensor}' ({candidate.shape[2]}x{candidate.shape[3]})",
            hint="choose a grid with at most F's rows and columns",
        )
    return chosen


def search(
    graph: gs.Graph,
    prefix: FusablePrefix,
    candidates: list[Candidate],
    model: ModelCosts,
    compute: ComputeModel,
    link: LinkModel,
    options: SearchOptions,
) -> SearchResult:
    """Find the best plan.

    Args:
        graph: the normalized graph.
        prefix: its fusable prefix.
        candidates: the candidate F tensors.
        model: the whole model's costs.
        compute: device and edge speeds.
        link: the device→edge link.
        options: the solver and the search space.

    Returns:
        The best plan with fused layers (if any), the baselines and the bound.

    Raises:
        UsageError: --fuse-at or --grid do not fit the model.
        SolverLimitError: --solver bf was asked for a grid too large for it, and no other.
    """
    started = time.perf_counter()
    base = baselines(model, compute, link)
    notes: list[str] = []
    if options.solver not in SOLVER_CHOICES:
        raise UsageError(
            f"--solver '{options.solver}' is unknown", hint=f"choose {', '.join(SOLVER_CHOICES)}"
        )
    if options.solver == "nfl" and (options.grid or options.fuse_at):
        raise UsageError(
            "--solver nfl plans without fused layers, so --grid and --fuse-at do not apply",
            hint="drop them, or choose another --solver",
        )
    chosen = _select_candidates(candidates, options) if options.solver != "nfl" else []
    if options.solver != "nfl" and not candidates:
        why = prefix.stops[0] if prefix.stops else "the model has no local op"
        if options.grid is not None:
            raise UsageError(
                f"--grid is given but the model has no tensor to fuse at ({why})",
                hint="drop --grid to get the best plan without fused layers",
            )
        notes.append(f"no tensor to fuse at: {why}")
    first_pass = {"best": ("mw",), "nfl": ()}.get(options.solver, (options.solver,))
    work = [(c, g) for c in chosen for g in grids_for(c, options)]
    if options.grid and chosen and not work:
        raise UsageError(
            f"--grid {options.grid[0]}x{options.grid[1]} is larger than every F",
            hint="choose a smaller grid, or let flcompile search (omit --grid)",
        )
    return_s = link.return_s(model.output_bytes)
    per_f = {}
    bound = base.nfl.total_s
    for candidate in candidates:  # the bound covers every F, whatever the options fix
        rest = set(model.nodes) - set(candidate.block)
        block = make_block(graph, prefix, candidate)
        state = FusedTensorState(
            candidate, block, block_costs(graph, block), model.edge_s(rest, compute)
        )
        per_f[candidate.tensor] = state
        try:
            bound = min(bound, state.fluid_bound(compute, link, return_s))
        except EmptyRegionError:
            log.info("F %s: some pixel of it reads only padding; skipped", candidate.tensor)
    tracker = PlanTracker(base.nfl.total_s)
    tables: list[tuple[float, int, FusedPlan]] = []
    bar = tqdm(work, desc="planning", unit="grid", disable=not options.progress, leave=False)
    for candidate, grid in bar:
        entry = per_f[candidate.tensor].plan_entry(grid, compute, link, return_s)
        if entry is None:
            continue
        scores = [tracker.run(entry, name) for name in first_pass]
        tables.append((min(scores), len(tables), entry))
    bar.close()
    forced = options.grid is not None or options.fuse_at is not None
    if forced and work and not tables:
        raise UsageError(
            f"the forced {'grid' if options.grid else 'F'} has a tile that reads only padding",
            hint="choose a smaller --grid or another --fuse-at",
        )
    if options.solver == "best":
        for entry in shortlist(tables):
            tracker.run(entry, "opt")
    best = tracker.best
    if tracker.refused and tracker.plans == 0 and tracker.last_refusal is not None:
        raise tracker.last_refusal
    if tracker.refused:
        notes.append(f"bf refused {tracker.refused} grid(s) beyond its size bound")
    grids_tried, plans, best_by_solver = len(tables), tracker.plans, tracker.best_by_solver
    use_fused = best is not None and (forced or best.predicted_s < base.nfl.total_s)
    if best is not None and use_fused and best.predicted_s >= base.nfl.total_s:
        notes.append(
            f"the forced F/grid is slower than NFL ({best.predicted_s * 1e3:.2f} ms vs "
            f"{base.nfl.total_s * 1e3:.2f} ms)"
        )
    stats = SearchStats(len(chosen), grids_tried, plans, time.perf_counter() - started)
    return SearchResult(best, use_fused, base, bound, best_by_solver, stats, tuple(notes))


@dataclass(eq=False)
class FusedTensorState:
    """One candidate F: its block, the seconds after it, and its per-axis region memo."""

    candidate: Candidate
    block: Block
    costs: BlockCosts
    rest_s: float
    cache: AxisCache = field(default_factory=dict)

    def fluid_bound(self, compute: ComputeModel, link: LinkModel, return_s: float) -> float:
        """This F's fluid lower bound."""
        return fluid_bound_of_block(
            self.block, self.costs, self.rest_s, compute, link, return_s, self.cache
        )

    def plan_entry(
        self, grid: tuple[int, int], compute: ComputeModel, link: LinkModel, return_s: float
    ) -> FusedPlan | None:
        """The unsolved plan of one grid (no schedule yet), or None when a tile reads only
        padding."""
        try:
            tiling = make_tiling(self.block, grid, self.cache)
        except EmptyRegionError:
            return None
        costs = tile_costs(tiling, self.costs)
        fuse_nodes = (grid[0] if grid[1] > 1 else 0) + (1 if grid[0] > 1 else 0)
        post = self.rest_s + max(fuse_nodes, 1) * compute.overhead_edge_s
        table = cost_table(costs, compute, link, post_fuse_s=post, return_s=return_s, grid=grid)
        return FusedPlan(self.candidate, tiling, costs, table, Schedule((), ()), "", float("inf"))


class PlanTracker:
    """Runs solvers on tables and keeps the best plan and each solver's best score."""

    def __init__(self, nfl_s: float) -> None:
        self.best: FusedPlan | None = None
        self.best_by_solver: dict[str, float] = {"nfl": nfl_s}
        self.plans = 0
        self.refused = 0
        self.last_refusal: SolverLimitError | None = None

    def run(self, entry: FusedPlan, solver: str) -> float:
        """Solve `entry`'s table with `solver`; returns the predicted latency (inf if refused)."""
        try:
            schedule = SOLVERS[solver](entry.table)
        except SolverLimitError as e:
            self.refused += 1
            self.last_refusal = e
            return float("inf")
        self.plans += 1
        predicted = makespan(entry.table, schedule.order, schedule.cuts)
        self.best_by_solver[solver] = min(self.best_by_solver.get(solver, float("inf")), predicted)
        if self.best is None or predicted < self.best.predicted_s - 1e-15:
            self.best = replace(entry, schedule=schedule, solver=solver, predicted_s=predicted)
        return predicted


def shortlist(tables: list[tuple[float, int, FusedPlan]]) -> list[FusedPlan]:
    """The (F, grid) choices `--solver best` also gives to opt after MW has scored them all.

    opt costs far more than MW per table, so it sees the OPT_SHORTLIST best tables by MW's
    score plus every F's 2×2 grid (the paper's BF(2×2) setting), not all of them.
    """
    ranked = sorted(tables, key=lambda t: (t[0], t[1]))
    chosen = {index: entry for _, index, entry in ranked[:OPT_SHORTLIST]}
    chosen.update({i: e for _, i, e in tables if e.tiling.grid == (2, 2)})
    return [chosen[i] for i in sorted(chosen)]


def fluid_bound_of_block(
    block: Block,
    costs: BlockCosts,
    rest_s: float,
    compute: ComputeModel,
    link: LinkModel,
    return_s: float,
    cache: AxisCache | None = None,
) -> float:
    """The fluid lower bound of one F (DESIGN §4) from its untiled block.

    Per-node overheads and the link latency are left out, which keeps it a lower bound.

    Args:
        block: the block that computes F.
        costs: its per-pixel costs.
        rest_s: edge seconds of everything after F.
        compute: device and edge speeds, and the edge concurrency.
        link: the link (its rate).
        return_s: seconds to return the results.
        cache: the block's per-axis region memo, when the caller keeps one.

    Returns:
        The bound in seconds.

    Raises:
        EmptyRegionError: some pixel of F reads only padding.
    """
    ideal = cost_table(
        tile_costs(make_tiling(block, (1, 1), cache), costs),
        replace(compute, overhead_dev_s=0.0, overhead_edge_s=0.0),
        replace(link, latency_s=0.0),
        post_fuse_s=0.0,
        return_s=0.0,
        grid=(1, 1),
    )
    bound = fluid_lower_bound(
        ideal.device_s[0], ideal.link_s[0], ideal.edge_s[0], rest_s, compute.edge_concurrency
    )
    return bound + return_s
