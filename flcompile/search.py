"""The plan search in two steps: a model's `SearchSpace`, built once, and `solve` per link.

`build_space` tiles every candidate F at every grid the options allow and keeps what does
not depend on the link: each (F, grid)'s FLOPs and bytes per path and cut and the edge
seconds after the fuse. `solve(space, link, strategy)` turns those into the solvers' tables
at one link, runs the strategy's solvers and scores every plan with the one simulator
(`flcompile.simulate`), so scores compare. A plan with fused layers is kept only when it
beats the best single cut (NFL), unless the user fixed F or the grid. A sweep over link
rates builds the space once and solves it at every rate.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from math import inf
from typing import Protocol

import numpy as np
import onnx_graphsurgeon as gs
from tqdm import tqdm

from flcompile.costs.fuse import fuse_work
from flcompile.costs.intermediate import scan_edge_floor_s
from flcompile.costs.link import LinkModel
from flcompile.costs.node_cost import ComputeModel
from flcompile.costs.reuse import MAX_REUSE_PATHS, ReuseGeometry
from flcompile.costs.table import CostTable, cost_table
from flcompile.costs.tiles import BlockCosts, TileCosts, block_costs, tile_costs, tiling_geometry
from flcompile.costs.untiled import Baselines, ModelCosts, SingleCut, baselines, model_costs
from flcompile.costs.wire import DEFAULT_SEND_DTYPE, FLOAT32
from flcompile.errors import SolverLimitError, UsageError
from flcompile.intermediate_search import ScanPlan, scan_plans, solve_scans
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
from flcompile.plans import FusedPlan, Plan, SingleCutPlan
from flcompile.schedule import Schedule
from flcompile.simulate import makespan
from flcompile.solvers.bf import solve_bf
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt, solve_opt_proving
from flcompile.space_bound import BoundInput, SpaceBound
from flcompile.tile_search import refine_boundaries

log = logging.getLogger(__name__)

SOLVERS: dict[str, Callable[[CostTable], Schedule]] = {
    "mw": solve_mw,
    "opt": solve_opt,
    "bf": solve_bf,
}
# Each solver's schedule and whether the solver proved it optimal on its table.
PROVING_SOLVERS: dict[str, Callable[[CostTable], tuple[Schedule, bool]]] = {
    "mw": lambda table: (solve_mw(table), False),
    "opt": solve_opt_proving,
    "bf": lambda table: (solve_bf(table), True),
}
SOLVER_CHOICES = ("best", "opt", "mw", "bf", "nfl", "scan")
# The strategies that score the intermediate-reuse plans (`flcompile.intermediate_search`).
SCAN_STRATEGIES = ("best", "scan")
TILES_CHOICES = ("uniform", "free")
DEFAULT_TILES = "free"  # what `--tiles` means when neither it nor --grid is given
# How many of MW's best (F, grid) choices `--solver best` also solves with opt.
OPT_SHORTLIST = 16
OPT_SHORTLIST_REUSE = 8  # under edge-side reuse, where opt costs ten times more
# How many more tables `--solver best` gives opt because their space bound is below the
# best plan so far (lowest bound first): with independent paths, and under edge-side
# reuse, where opt costs more and the bound is looser.
BELOW_BOUND_RUNS = 24
BELOW_BOUND_RUNS_REUSE = 4
# Under edge-side reuse, `--solver best` also runs the independent search (the paper's
# paths, `--no-reuse`) and scores its plan under reuse when the best plan after MW, opt's
# shortlist and the scan plans is more than this factor above the space bound: there the
# bound leaves room that the reuse search, with fewer exact runs, may miss.
INDEPENDENT_SEARCH_ABOVE = 1.05
INDEPENDENT_SOLVER = "independent"  # what plan.json's `solver` says of that plan
# Edge-side reuse unless --no-reuse (or --paper) says otherwise.
DEFAULT_REUSE = True
# Under edge-side reuse, intermediate reuse too unless --no-intermediate-reuse says otherwise.
DEFAULT_INTERMEDIATE = True


@dataclass(frozen=True)
class SearchOptions:
    """What the search may choose from.

    Attributes:
        solver: one of SOLVER_CHOICES (a space for "nfl" holds no (F, grid) choice).
        grid: a fixed (rows, columns), or None to search.
        fuse_at: a fixed F tensor name, or None to search.
        max_grid: the largest (rows, columns) searched.
        send_dtype: the wire dtype of what the device sends (`flcompile.costs.wire`); every
            cost, baseline and bound counts the bytes in it.
        reuse: edge-side reuse: a path sends only what the edge does not hold yet
            (`flcompile.costs.reuse`); False is the paper's independent paths.
        tiles: "uniform" (equal splits of F) or "free" (also search the row and column
            boundaries, `flcompile.tile_search`); None: DEFAULT_TILES, but uniform when
            `grid` is fixed.
        intermediate: with `reuse`, `--solver best` also plans intermediate reuse: the
            edge keeps what it computed, every path cut at the raw input, in a scan order
            (`flcompile.intermediate_search`).
    """

    solver: str = "best"
    grid: tuple[int, int] | None = None
    fuse_at: str | None = None
    max_grid: tuple[int, int] = (8, 8)
    send_dtype: str = DEFAULT_SEND_DTYPE
    reuse: bool = False
    tiles: str | None = None
    intermediate: bool = False

    @property
    def free_tiles(self) -> bool:
        """Whether the search moves tile boundaries (`tiles`, resolved)."""
        tiles = self.tiles or (DEFAULT_TILES if self.grid is None else "uniform")
        return tiles == "free"


@dataclass(frozen=True)
class SearchStats:
    """How much the search did (plan.json's search{}).

    Attributes:
        plans_evaluated: the solver runs (`SearchResult.runs` and `independent_runs`).
        boundaries_s: seconds of the boundary searches (`--tiles free`), their final solves
            included.
        boundary_tilings: how many tilings the boundary searches scored.
    """

    candidates_F: int
    grids_tried: int
    plans_evaluated: int
    seconds: float
    boundaries_s: float = 0.0
    boundary_tilings: int = 0


@dataclass(frozen=True, eq=False)
class SolverRun:
    """One solver run on one (F, grid) table: the plan it scored and how long it took.

    Attributes:
        plan: the plan solved (its schedule is the solver's, unless the solver refused).
        solver: the solver's name.
        predicted_s: the simulated latency (inf when the solver refused the table).
        seconds: the solver's wall time.
        optimal: the solver proved that no schedule of the table finishes earlier.
    """

    plan: FusedPlan
    solver: str
    predicted_s: float
    seconds: float
    optimal: bool = False


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The chosen plan, the baselines and the bound.

    Attributes:
        plan: the plan to emit: the best plan with fused layers, or the best single cut.
        fused: the best plan with fused layers found, chosen or not (None when none was
            possible); sweeps and solver comparisons read it.
        baselines: local-only, full offload and NFL.
        lower_bound_s: the smallest fluid bound over all F, and never above NFL.
        lower_bound_space_s: a lower bound on every plan the search can return: the least
            bound of any schedule of any (F, grid) of the space (`flcompile.space_bound`,
            or the table's optimum where an exact solver ran) and, under intermediate
            reuse, the least scan plan (that family is scored whole); never above NFL.
        best_by_solver: each solver's best predicted latency.
        stats: search effort.
        strategy: the strategy solved with (the --solver asked for).
        notes: things the user should hear (why no FL plan, what a forced choice costs).
        runs: every solver run on this space's tables, in the order they ran.
        send_dtype: the wire dtype the plan's sends are counted (and emitted) in.
        nfl_float32: NFL with float32 sends, for a fair comparison when `send_dtype` is not
            float32 (None when it is: `baselines.nfl` is that already).
        independent_runs: under reuse, the solver runs of the independent search on its
            own tables, where `best` ran it (`INDEPENDENT_SEARCH_ABOVE`); `plans_evaluated`
            counts them too.
    """

    plan: Plan
    fused: FusedPlan | None
    baselines: Baselines
    lower_bound_s: float
    lower_bound_space_s: float
    best_by_solver: dict[str, float]
    stats: SearchStats
    strategy: str
    notes: tuple[str, ...] = field(default=())
    runs: tuple[SolverRun, ...] = field(default=())
    send_dtype: str = DEFAULT_SEND_DTYPE
    nfl_float32: SingleCut | None = None
    independent_runs: tuple[SolverRun, ...] = field(default=())

    @property
    def predicted_s(self) -> float:
        """The emitted plan's predicted latency."""
        return self.plan.predicted_s


@dataclass(frozen=True, eq=False)
class FusedTensor:
    """One candidate F: its block and the block's costs, independent of grid and link.

    Attributes:
        candidate: F.
        block: the block that computes F.
        costs: the block's per-pixel costs.
        rest_s: edge seconds of everything after F.
        rest_nodes: how many nodes that is.
        whole: the costs of F as one tile (the fluid bound's input), or None when some
            pixel of F reads only padding.
        cache: the block's per-axis region memo, shared by its grids.
    """

    candidate: Candidate
    block: Block
    costs: BlockCosts
    rest_s: float
    rest_nodes: int
    whole: TileCosts | None
    cache: AxisCache


@dataclass(frozen=True, eq=False)
class GridChoice:
    """One (F, grid) of a search space: its tiling and costs before a link is chosen.

    Attributes:
        fused: F.
        tiling: the grid and per-tile regions.
        costs: FLOPs and bytes per path and cut.
        post_fuse_s: edge seconds of the fuse nodes and everything after F.
    """

    fused: FusedTensor
    tiling: Tiling
    costs: TileCosts
    post_fuse_s: float

    @property
    def candidate(self) -> Candidate:
        """F."""
        return self.fused.candidate

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns)."""
        return self.tiling.grid

    @functools.cached_property
    def geometry(self) -> ReuseGeometry:
        """Every path's region of every block tensor, for edge-side reuse (built when asked)."""
        return tiling_geometry(self.tiling, self.fused.costs)


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """Everything the search chooses from, for one model and compute model, at any link.

    Attributes:
        model: the whole model's costs (the single cuts and baselines come from them).
        compute: device and edge speeds, overheads and the edge concurrency.
        fused: every candidate F (the lower bound covers all, whatever the options fix).
        choices: the (F, grid) pairs the options allow whose tiles all read some real
            pixel, in search order (F, then grids row-major).
        candidates_F: how many F the options allow.
        forced: the options fix F or the grid.
        no_fused_reason: why the model has no F at all, or None when it has some.
        build_s: seconds spent building the space.
        float32_model: the whole model's costs with float32 sends, when `model` counts
            another wire dtype (None when it does not), for NFL with float32 sends.
        reuse: the tables charge each path its new bytes only (edge-side reuse).
        free_tiles: `solve` also searches the tile boundaries of its best choices.
        intermediate: `solve` ("best") also scores the intermediate-reuse plans.
    """

    model: ModelCosts
    compute: ComputeModel
    fused: tuple[FusedTensor, ...]
    choices: tuple[GridChoice, ...]
    candidates_F: int
    forced: bool
    no_fused_reason: str | None
    build_s: float
    float32_model: ModelCosts | None = None
    reuse: bool = False
    free_tiles: bool = False
    intermediate: bool = False
    _scans: dict = field(default_factory=dict, repr=False)

    def scan_plans(self, choice: GridChoice) -> list[ScanPlan]:
        """The intermediate-reuse plans of one (F, grid), built once per space."""
        key = ("plans", id(choice))
        if key not in self._scans:
            self._scans[key] = scan_plans(self, choice)
        return self._scans[key]

    def scan_edge_floor_s(self, choice: GridChoice) -> float:
        """A floor on the edge seconds of any scan plan of one (F, grid), once per space."""
        key = ("floor", id(choice))
        if key not in self._scans:
            self._scans[key] = scan_edge_floor_s(choice.tiling, choice.costs, self.compute)
        return self._scans[key]

    def table(self, choice: GridChoice, link: LinkModel) -> CostTable:
        """The solvers' seconds table of one (F, grid) at a link."""
        return cost_table(
            choice.costs,
            self.compute,
            link,
            post_fuse_s=choice.post_fuse_s,
            return_s=link.return_s(self.model.output_bytes),
            grid=choice.grid,
            reuse=choice.geometry if self.reuse_for(choice) else None,
        )

    def reuse_for(self, choice: GridChoice) -> bool:
        """Whether `choice` is planned with edge-side reuse: asked for, and at most
        MAX_REUSE_PATHS paths (held sets are 64-bit masks; larger grids send independently)."""
        return self.reuse and choice.tiling.num_paths <= MAX_REUSE_PATHS

    def within(self, max_grid: tuple[int, int]) -> SearchSpace:
        """The same space with only the grids of at most `max_grid` rows and columns."""
        rows, cols = max_grid
        kept = tuple(c for c in self.choices if c.grid[0] <= rows and c.grid[1] <= cols)
        return replace(self, choices=kept)


def grids_for(candidate: Candidate, options: SearchOptions) -> list[tuple[int, int]]:
    """The grids to try for F: the fixed one, or every r×c up to max_grid that fits F."""
    h, w = candidate.shape[2], candidate.shape[3]
    if options.grid is not None:
        return [options.grid] if options.grid[0] <= h and options.grid[1] <= w else []
    rows, cols = min(options.max_grid[0], h), min(options.max_grid[1], w)
    return [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]


def _check_solver(solver: str) -> None:
    if solver not in SOLVER_CHOICES:
        raise UsageError(
            f"--solver '{solver}' is unknown", hint=f"choose {', '.join(SOLVER_CHOICES)}"
        )


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


def _chosen_candidates(
    prefix: FusablePrefix, candidates: list[Candidate], options: SearchOptions
) -> tuple[list[Candidate], str | None]:
    """The F the options allow, and why there is none at all (None when there are some).

    Raises:
        UsageError: the options contradict each other or do not fit the model.
    """
    _check_solver(options.solver)
    if options.tiles not in (None, *TILES_CHOICES):
        raise UsageError(
            f"--tiles '{options.tiles}' is unknown", hint=f"choose {' or '.join(TILES_CHOICES)}"
        )
    if options.solver == "nfl" and (options.grid or options.fuse_at):
        raise UsageError(
            "--solver nfl plans without fused layers, so --grid and --fuse-at do not apply",
            hint="drop them, or choose another --solver",
        )
    if options.solver == "scan" and not (options.reuse and options.intermediate):
        raise UsageError(
            "--solver scan plans intermediate reuse, which is off",
            hint="drop --no-reuse, --paper or --no-intermediate-reuse, or choose another --solver",
        )
    chosen = _select_candidates(candidates, options) if options.solver != "nfl" else []
    reason = None
    if not candidates:
        reason = prefix.stops[0] if prefix.stops else "the model has no local op"
        if options.solver != "nfl" and options.grid is not None:
            raise UsageError(
                f"--grid is given but the model has no tensor to fuse at ({reason})",
                hint="drop --grid to get the best plan without fused layers",
            )
    return chosen, reason


def _fused_tensor(
    graph: gs.Graph,
    prefix: FusablePrefix,
    candidate: Candidate,
    model: ModelCosts,
    compute: ComputeModel,
) -> FusedTensor:
    """One F's block, its costs (bytes in `model`'s wire dtype), and its costs as one tile."""
    block = make_block(graph, prefix, candidate)
    costs = block_costs(graph, block, model.send_dtype)
    rest = set(model.nodes) - set(candidate.block)
    rest_s = model.edge_s(rest, compute)
    cache: AxisCache = {}
    try:
        whole = tile_costs(make_tiling(block, (1, 1), cache), costs)
    except EmptyRegionError:
        log.info("F %s: some pixel of it reads only padding; skipped", candidate.tensor)
        whole = None
    return FusedTensor(candidate, block, costs, rest_s, len(rest), whole, cache)


class AnalysedModel(Protocol):
    """What `build_space` reads of an analysed model (`flcompile.compile.Analysis`)."""

    @property
    def graph(self) -> gs.Graph:
        """The normalized graph."""

    @property
    def prefix(self) -> FusablePrefix:
        """Its fusable prefix."""

    @property
    def candidates(self) -> list[Candidate]:
        """The candidate F tensors."""

    @property
    def costs(self) -> ModelCosts:
        """The whole model's costs."""


def build_space(
    analysis: AnalysedModel,
    compute: ComputeModel,
    options: SearchOptions,
    *,
    progress: bool = False,
) -> SearchSpace:
    """Tile every (F, grid) the options allow, once, with its link-independent costs.

    Args:
        analysis: the analysed model: its normalized graph, fusable prefix, candidate F
            tensors and costs.
        compute: device and edge speeds.
        options: the search space (and the solver, checked here).
        progress: show a progress bar.

    Returns:
        The space.

    Raises:
        UsageError: --solver, --fuse-at or --grid do not fit the model or each other.
    """
    started = time.perf_counter()
    graph, prefix, candidates = analysis.graph, analysis.prefix, analysis.candidates
    chosen, no_fused_reason = _chosen_candidates(prefix, candidates, options)
    work = [(c, g) for c in chosen for g in grids_for(c, options)]
    if options.grid and chosen and not work:
        raise UsageError(
            f"--grid {options.grid[0]}x{options.grid[1]} is larger than every F",
            hint="choose a smaller grid, or let flcompile search (omit --grid)",
        )
    model, float32_model = analysis.costs, None
    if options.send_dtype != model.send_dtype:  # the analysis counts float32 sends
        model, float32_model = model_costs(graph, options.send_dtype), model
    fused = {c.tensor: _fused_tensor(graph, prefix, c, model, compute) for c in candidates}
    choices = _grid_choices(work, fused, compute, progress)
    forced = options.grid is not None or options.fuse_at is not None
    if forced and work and not choices:
        raise UsageError(
            f"the forced {'grid' if options.grid else 'F'} has a tile that reads only padding",
            hint="choose a smaller --grid or another --fuse-at",
        )
    return SearchSpace(
        model,
        compute,
        tuple(fused.values()),
        tuple(choices),
        len(chosen),
        forced,
        no_fused_reason,
        time.perf_counter() - started,
        float32_model,
        options.reuse,
        options.free_tiles,
        options.reuse and options.intermediate,
    )


def _grid_choices(
    work: list[tuple[Candidate, tuple[int, int]]],
    fused: dict[str, FusedTensor],
    compute: ComputeModel,
    progress: bool,
) -> list[GridChoice]:
    """Tile each (F, grid) of `work`; a grid with a tile that reads only padding is left out."""
    choices = []
    bar = tqdm(work, desc="tiling", unit="grid", disable=not progress, leave=False)
    for candidate, grid in bar:
        f = fused[candidate.tensor]
        try:
            tiling = make_tiling(f.block, grid, f.cache)
        except EmptyRegionError:
            continue
        tiles = tile_costs(tiling, f.costs)
        fuse = fuse_work(grid, tiles.fused_bytes)
        fuse_run_s = compute.edge_run_s(float(f.rest_nodes + len(fuse.keys)))  # one edge run
        post_fuse_s = f.rest_s + compute.edge_total_s(fuse) + fuse_run_s
        choices.append(GridChoice(f, tiling, tiles, post_fuse_s))
    bar.close()
    return choices


def solve(
    space: SearchSpace, link: LinkModel, strategy: str, *, progress: bool = False
) -> SearchResult:
    """Find the best plan of a space at one link.

    Strategies: "mw", "opt" or "bf" run that solver on every (F, grid); "best" runs MW on
    every one, opt on `shortlist` of them, then opt on every other one whose lower bound
    is below the best plan so far, then scores the intermediate-reuse plans when the space
    has them; "scan" scores only those; "nfl" plans without fused layers.

    Args:
        space: the search space.
        link: the device→edge link.
        strategy: one of SOLVER_CHOICES.
        progress: show a progress bar.

    Returns:
        The best plan with fused layers (if any), the baselines and the bound.

    Raises:
        UsageError: an unknown strategy.
        SolverLimitError: "bf" refused every table of the space.
    """
    started = time.perf_counter()
    _check_solver(strategy)
    base = baselines(space.model, space.compute, link)
    bound = _lower_bound(space, link, base)
    notes: list[str] = []
    if strategy != "nfl" and space.no_fused_reason is not None:
        notes.append(f"no tensor to fuse at: {space.no_fused_reason}")
    tracker = PlanTracker(base.nfl.total_s)
    entries, space_bound, scans = _search(space, link, strategy, tracker, progress)
    bound_space = min(_space_bound(entries, space_bound, tracker), scans)
    best = tracker.best
    if tracker.refused and tracker.plans == 0 and tracker.last_refusal is not None:
        raise tracker.last_refusal
    if tracker.refused:
        notes.append(f"bf refused {tracker.refused} grid(s) beyond its size bound")
    plan = _chosen_plan(best, base, strategy, space.forced)
    if plan is best and best is not None and best.predicted_s >= base.nfl.total_s:
        notes.append(
            f"the forced F/grid is slower than NFL ({best.predicted_s * 1e3:.2f} ms vs "
            f"{base.nfl.total_s * 1e3:.2f} ms)"
        )
    candidates_F = space.candidates_F if strategy != "nfl" else 0
    seconds = space.build_s + time.perf_counter() - started
    stats = SearchStats(
        candidates_F,
        len(entries),
        tracker.plans,
        seconds,
        tracker.boundaries_s,
        tracker.boundary_tilings,
    )
    return SearchResult(
        plan,
        best,
        base,
        bound,
        bound_space,
        tracker.best_by_solver,
        stats,
        strategy,
        tuple(notes),
        tuple(tracker.runs),
        space.model.send_dtype,
        _nfl_float32(space, link),
        tuple(tracker.aside),
    )


def _search(
    space: SearchSpace, link: LinkModel, strategy: str, tracker: PlanTracker, progress: bool
) -> tuple[list[FusedPlan], SpaceBound, float]:
    """Run the strategy's steps, handing every plan to `tracker`.

    Returns:
        The space's uniform (F, grid) plans (unsolved), their space bound, and the best
        intermediate-reuse plan's latency (inf when none was scored; that family is scored
        whole, so it bounds itself).
    """
    scored = _run_solvers(space, link, strategy, tracker, progress)
    entries = [entry for _, _, entry in scored]
    scans = inf
    if strategy in SCAN_STRATEGIES and space.intermediate:
        # Before the bound-steered steps, so that a good scan plan spares them work; "scan"
        # keeps its best plan even where NFL is faster, as every solver does.
        ceiling = tracker.ceiling if strategy == "best" else tracker.best_fused_s
        scans = solve_scans(space, entries, link, tracker.offer, ceiling, progress=progress)
    space_bound = SpaceBound([BoundInput.of(e.table) for e in entries])
    if strategy == "best" and space.reuse:
        # Polishing the bound here also orders the bound-steered runs by their full bound.
        floor = min(_space_bound(entries, space_bound, tracker), scans)
        if tracker.ceiling() > INDEPENDENT_SEARCH_ABOVE * floor:
            _independent_search(space, link, tracker, progress)
    if strategy == "best":
        _solve_below_bound(entries, space_bound, tracker)
    _refine_boundaries(space, link, strategy, scored, tracker, progress)
    return entries, space_bound, scans


def _nfl_float32(space: SearchSpace, link: LinkModel) -> SingleCut | None:
    """NFL with float32 sends when the space counts another wire dtype, else None."""
    if space.float32_model is None or space.model.send_dtype == FLOAT32:
        return None
    return baselines(space.float32_model, space.compute, link).nfl


def _lower_bound(space: SearchSpace, link: LinkModel, base: Baselines) -> float:
    """The smallest fluid bound over every F of the space, and never above NFL."""
    return_s = link.return_s(space.model.output_bytes)
    return min(
        [base.nfl.total_s]
        + [
            fluid_bound(f, space.compute, link, return_s)
            for f in space.fused
            if f.whole is not None
        ]
    )


def _run_solvers(
    space: SearchSpace, link: LinkModel, strategy: str, tracker: PlanTracker, progress: bool
) -> list[tuple[float, int, FusedPlan]]:
    """Run the strategy's solvers on the space's (F, grid) tables.

    Returns:
        (best latency found, index in `space.choices`, the table's plan, unsolved) per table.
    """
    first_pass = {"best": ("mw",), "scan": ()}.get(strategy, (strategy,))
    choices = space.choices if strategy != "nfl" else ()
    scored: list[tuple[float, int, FusedPlan]] = []
    for choice in tqdm(choices, desc="planning", unit="grid", disable=not progress, leave=False):
        table = space.table(choice, link)
        unsolved = Schedule((), ())
        entry = FusedPlan(choice.candidate, choice.tiling, choice.costs, table, unsolved, "", inf)
        scores = [inf, *(tracker.run(entry, name) for name in first_pass)]
        if (
            table.reuse is not None and first_pass
        ):  # MW ignores what reuse saves: rank raw raster tiles too
            scores.append(_raster_estimate(table))
        scored.append((min(scores), len(scored), entry))
    if strategy == "best":
        exact = {id(e): tracker.run(e, "opt") for e in shortlist(scored)}
        scored = [(min(s, exact.get(id(e), inf)), i, e) for s, i, e in scored]
    return scored


def _refine_boundaries(
    space: SearchSpace,
    link: LinkModel,
    strategy: str,
    scored: list[tuple[float, int, FusedPlan]],
    tracker: PlanTracker,
    progress: bool,
) -> None:
    """With free tiles, search the boundaries of the best choices (`flcompile.tile_search`)."""
    if not (space.free_tiles and scored) or strategy == "scan":
        return
    started = time.perf_counter()
    tracker.boundary_tilings += refine_boundaries(
        space, link, strategy, scored, tracker.run, progress=progress
    )
    tracker.boundaries_s += time.perf_counter() - started


def _independent_search(
    space: SearchSpace, link: LinkModel, tracker: PlanTracker, progress: bool
) -> None:
    """Under edge-side reuse, offer `tracker` the independent search's best plan, scored
    under reuse on the same tiling.

    A path never sends more under reuse than its whole region, so the independent plan's
    schedule costs at most its independent latency there: the search never returns a plan
    slower than the one `--no-reuse` finds. The independent search gives opt more tables
    (opt costs ten times less without reuse), which can find a table the reuse search
    ranked too low. The plan's reuse table joins the space bound with the boundary
    search's tilings (`_space_bound`).
    """
    independent = replace(space, reuse=False, intermediate=False, _scans={})
    # Its bound-steered steps stop at the best plan so far (as its "NFL"). They run as in
    # the `--no-reuse` search until that search's plan is found, if it beats that plan;
    # if it does not, the plan so far already does.
    own = PlanTracker(tracker.ceiling())
    _search(independent, link, "best", own, progress)
    tracker.plans += own.plans
    tracker.aside.extend(own.runs)
    tracker.boundaries_s += own.boundaries_s
    tracker.boundary_tilings += own.boundary_tilings
    plan = own.best
    if plan is None:
        return
    choice = next(
        c for c in space.choices if c.candidate == plan.candidate and c.grid == plan.tiling.grid
    )  # the boundary search keeps its choice's post-fuse seconds (`tile_search`)
    table = space.table(replace(choice, tiling=plan.tiling, costs=plan.costs), link)
    schedule = plan.schedule
    predicted = makespan(table, schedule.order, schedule.cuts)
    rescored = replace(plan, table=table, solver=INDEPENDENT_SOLVER, predicted_s=predicted)
    tracker.offer(rescored)


def _space_bound(entries: list[FusedPlan], bound: SpaceBound, tracker: PlanTracker) -> float:
    """The least bound (or proven optimum) over the uniform tables and every other table a
    plan was scored on (the boundary search's tilings, the independent search's plan under
    reuse): every table a plan can come from."""
    known = {id(e.table) for e in entries}
    free = {
        id(r.plan.table): r.plan
        for r in tracker.runs
        if id(r.plan.table) not in known and r.plan.computed is None
    }
    value, _ = bound.value(tracker.ceiling(), _exact_optima(entries, tracker))
    if free:
        tables = list(free.values())
        free_bound = SpaceBound([BoundInput.of(e.table) for e in tables])
        value = min(value, free_bound.value(tracker.ceiling(), _exact_optima(tables, tracker))[0])
    return value


def _solve_below_bound(entries: list[FusedPlan], bound: SpaceBound, tracker: PlanTracker) -> None:
    """opt on the tables not yet given to opt whose bound is below the best plan so far.

    Tables go by increasing bound, so the best plan falls early and prunes the rest; a
    table whose bound is no smaller than the best plan (or NFL) cannot hold a better one.
    At most BELOW_BOUND_RUNS tables are solved (BELOW_BOUND_RUNS_REUSE under edge-side
    reuse, where the bound is looser, a path's bytes depending on the paths before it, and
    hundreds of tables can lie below it).
    """
    solved = {id(run.plan.table) for run in tracker.runs if run.solver == "opt"}
    reuse = any(e.table.reuse is not None for e in entries)
    budget = BELOW_BOUND_RUNS_REUSE if reuse else BELOW_BOUND_RUNS
    runs = 0
    for i in bound.below(tracker.ceiling):
        if runs == budget:
            return
        if id(entries[i].table) not in solved:
            tracker.run(entries[i], "opt")
            runs += 1


def _exact_optima(entries: list[FusedPlan], tracker: PlanTracker) -> dict[int, float]:
    """The optimum of each table (by index) where a solver proved it (bf; opt where exact)."""
    index = {id(e.table): i for i, e in enumerate(entries)}
    return {
        index[id(run.plan.table)]: run.predicted_s
        for run in tracker.runs
        if run.optimal and id(run.plan.table) in index
    }


def _raster_estimate(table: CostTable) -> float:
    """About the latency of every tile sent raw, row-major, under reuse (for ranking only)."""
    sent = table.reuse.geometry.raster_bytes(table.grid)
    link_s = np.asarray(table.reuse.link.send_s(sent), float)[:, None]
    first = {"device_s": table.device_s[:, :1], "edge_s": table.edge_s[:, :1]}
    raw = replace(table, link_s=link_s, reuse=None, **first)
    paths = table.num_paths
    return makespan(raw, range(paths), [0] * paths)


def _chosen_plan(
    best: FusedPlan | None, base: Baselines, strategy: str, forced: bool
) -> FusedPlan | SingleCutPlan:
    """The best FL plan if it beats NFL (or F or the grid is forced), else NFL with why."""
    if best is not None and (forced or best.predicted_s < base.nfl.total_s):
        return best
    if strategy == "nfl":
        reason = "--solver nfl"
    elif best is None:
        reason = "no fused-layer plan is possible for this model"
    else:
        reason = "a single cut is faster than every fused-layer plan"
    return SingleCutPlan(base.nfl, reason)


class PlanTracker:
    """Runs solvers on tables and keeps the best plan, each solver's best score and every run."""

    def __init__(self, nfl_s: float) -> None:
        self.best: FusedPlan | None = None
        self.best_by_solver: dict[str, float] = {"nfl": nfl_s}
        self.plans = 0
        self.refused = 0
        self.last_refusal: SolverLimitError | None = None
        self.runs: list[SolverRun] = []
        self.aside: list[SolverRun] = []  # the independent search's (its tables, not ours)
        self.boundaries_s = 0.0
        self.boundary_tilings = 0

    def best_fused_s(self) -> float:
        """The best latency of a plan with fused layers found so far (inf before any)."""
        return self.best.predicted_s if self.best is not None else inf

    def ceiling(self) -> float:
        """The best latency found so far, NFL's included."""
        best = self.best.predicted_s if self.best is not None else inf
        return min(self.best_by_solver["nfl"], best)

    def run(self, entry: FusedPlan, solver: str) -> float:
        """Solve `entry`'s table with `solver`; returns the predicted latency (inf if refused)."""
        started = time.perf_counter()
        try:
            schedule, optimal = PROVING_SOLVERS[solver](entry.table)
        except SolverLimitError as e:
            self.refused += 1
            self.last_refusal = e
            self.runs.append(SolverRun(entry, solver, float("inf"), time.perf_counter() - started))
            return float("inf")
        predicted = makespan(entry.table, schedule.order, schedule.cuts)
        plan = replace(entry, schedule=schedule, solver=solver, predicted_s=predicted)
        self.offer(plan, time.perf_counter() - started, optimal)
        return predicted

    def offer(self, plan: FusedPlan, seconds: float = 0.0, optimal: bool = False) -> None:
        """Record a scored plan (its `solver` and `predicted_s` set); keep it if best."""
        self.plans += 1
        predicted, solver = plan.predicted_s, plan.solver
        self.runs.append(SolverRun(plan, solver, predicted, seconds, optimal))
        self.best_by_solver[solver] = min(self.best_by_solver.get(solver, float("inf")), predicted)
        if self.best is None or predicted < self.best.predicted_s - 1e-15:
            self.best = plan


def shortlist(tables: list[tuple[float, int, FusedPlan]]) -> list[FusedPlan]:
    """The (F, grid) choices `--solver best` also gives to opt after MW has scored them all.

    opt costs far more than MW per table, so it sees the OPT_SHORTLIST best tables by MW's
    score plus every F's 2×2 grid (the paper's BF(2×2) setting), not all of them. Under
    edge-side reuse, where opt costs ten times more and the scores already rank raw raster
    tiles, it sees the OPT_SHORTLIST_REUSE best only.
    """
    ranked = sorted(tables, key=lambda t: (t[0], t[1]))
    reuse = any(e.table.reuse is not None for _, _, e in tables)
    count = OPT_SHORTLIST_REUSE if reuse else OPT_SHORTLIST
    chosen = {index: entry for _, index, entry in ranked[:count]}
    chosen.update({i: e for _, i, e in tables if e.tiling.grid == (2, 2) and e.table.reuse is None})
    return [chosen[i] for i in sorted(chosen)]


def fluid_bound(
    fused: FusedTensor, compute: ComputeModel, link: LinkModel, return_s: float
) -> float:
    """The fluid lower bound of one F (docs/design.md §4) from its costs as one tile.

    Per-node overheads and the link latency are left out, which keeps it a lower bound.

    Args:
        fused: F, with `whole` set.
        compute: device and edge speeds, and the edge concurrency.
        link: the link (its rate).
        return_s: seconds to return the results.

    Returns:
        The bound in seconds.
    """
    ideal = cost_table(
        fused.whole,
        compute.without_overheads(),
        link.without_overheads(),
        post_fuse_s=0.0,
        return_s=0.0,
        grid=(1, 1),
    )
    bound = fluid_lower_bound(
        ideal.device_s[0], ideal.link_s[0], ideal.edge_s[0], fused.rest_s, compute.edge_concurrency
    )
    return bound + return_s
