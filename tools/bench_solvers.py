"""Time the solvers (MW, BF, opt) on one cost table per model and grid, and show their quality.

For each model and grid, F is the one MW scores best at that grid (`flcompile.search.solve`
with the "mw" strategy), or --fuse-at. On that one table, MW, BF and opt each run --repeats
times; the table prints their median solve times, the time ratios opt/MW and bf/opt measured
in the same run, and the makespans the one simulator gives their schedules, so the quality
is visible too: opt/BF must be 1.000 and MW/BF >= 1. BF refuses tables beyond its size
bound; those show "refused".

With `--tiles free` (flcompile's `--tiles`), each row also times the boundary search of
unequal tiles on that (F, grid) (`flcompile.tile_search`, as `--solver best` runs it: its
searches and the final opt solve) and gives the latency it finds; and a second table times
each model's whole default search (`build_space` once, then `solve(space, link, "best")`)
with uniform and with free tiles, medians of --search-repeats runs. Tables plan with
edge-side reuse as flcompile does (on unless --paper; --reuse/--no-reuse).

Rerun:
    python tools/bench_solvers.py --models alexnet,squeezenet,yolov2 --grids 2x2,4x4,8x8 \
        --rate 1.8 --repeats 5 --tiles free
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

from _common import (
    PAPER_MODELS,
    ToolParser,
    add_cost_args,
    add_hidden_model_args,
    add_models_arg,
    add_reuse_arg,
    add_tiles_arg,
    compute_model,
    count,
    edge_label,
    format_table,
    grid_list,
    grid_text,
    intermediate_of,
    load_analysis,
    median,
    positive_float,
    reuse_of,
    run_main,
    timed,
)
from tqdm import tqdm

from flcompile.costs import LinkModel
from flcompile.errors import SolverLimitError, UsageError
from flcompile.search import SearchOptions, solve
from flcompile.simulate import makespan
from flcompile.solvers.bf import BF_MAX_STATES, bf_search_size, solve_bf
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt

HEADERS = (
    "model",
    "grid",
    "F",
    "P",
    "K",
    "bf size",
    "MW ms",
    "BF ms",
    "opt ms",
    "opt/MW t",
    "bf/opt t",
    "MW lat ms",
    "BF lat ms",
    "opt lat ms",
    "MW/BF",
    "opt/BF",
    "opt/MW",
    "free ms",
    "free lat ms",
    "opt/free",
)
SEARCH_HEADERS = (
    "model",
    "space s",
    "uniform solve s",
    "free solve s",
    "boundaries s",
    "whole search s",
    "uniform ms",
    "free ms",
    "uniform/free",
)


def _fmt(x: float, spec: str) -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def bench_table(table, repeats: int) -> dict[str, float]:
    """Median solve seconds and makespans of MW, BF and opt on one table."""
    result: dict[str, float] = {}
    for name, solver in (("mw", solve_mw), ("bf", solve_bf), ("opt", solve_opt)):
        times = []
        latency = math.nan
        for _ in range(repeats):
            started = time.perf_counter()
            try:
                schedule = solver(table)
            except SolverLimitError:
                break
            times.append(time.perf_counter() - started)
            latency = makespan(table, schedule.order, schedule.cuts)
        result[f"{name}_s"] = median(times)
        result[f"{name}_lat"] = latency
    return result


def bench_free(analysis, plan, grid, opt_s: float, args, compute, link) -> list[str]:
    """The boundary search on one (F, grid): median seconds, the latency found, and opt's
    latency on equal tiles (`opt_s`) over it."""
    if args.tiles != "free" or grid == (1, 1):
        return ["-", "-", "-"]
    options = SearchOptions(
        grid=grid, fuse_at=plan.candidate.tensor, tiles="free", reuse=reuse_of(args)
    )
    space = analysis.space(compute, options)
    runs = [solve(space, link, "best") for _ in range(args.repeats)]
    latency = runs[0].fused.predicted_s
    return [
        _fmt(median(r.stats.boundaries_s for r in runs) * 1e3, ".2f"),
        _fmt(latency * 1e3, ".3f"),
        _fmt(opt_s / latency, ".4f"),
    ]


def bench_search(name: str, args, compute, link) -> list[str]:
    """The whole default search of one model, with uniform and with free tiles."""
    analysis = load_analysis(name, args.width, args.size)
    times: dict[str, list[float]] = {"space": [], "uniform": [], "free": [], "boundaries": []}
    found = {}
    options = SearchOptions(tiles="free", reuse=reuse_of(args), intermediate=intermediate_of(args))
    for _ in range(args.search_repeats):
        space_s, space = timed(lambda: analysis.space(compute, options))
        times["space"].append(space_s)
        for tiles in ("uniform", "free"):
            # A fresh memo of the intermediate-reuse plans: each search builds its own.
            tiled = replace(space, free_tiles=tiles == "free", _scans={})
            seconds, result = timed(lambda tiled=tiled: solve(tiled, link, "best"))
            times[tiles].append(seconds)
            found[tiles] = result.predicted_s
        times["boundaries"].append(result.stats.boundaries_s)
    med = {k: median(v) for k, v in times.items()}
    return [
        name,
        f"{med['space']:.2f}",
        f"{med['uniform']:.2f}",
        f"{med['free']:.2f}",
        f"{med['boundaries']:.2f}",
        f"{med['space'] + med['free']:.2f}",
        f"{found['uniform'] * 1e3:.2f}",
        f"{found['free'] * 1e3:.2f}",
        f"{found['uniform'] / found['free']:.4f}",
    ]


def bench_model(name: str, args, compute, link, bar) -> list[list[str]]:
    """One row per grid for one model."""
    analysis = load_analysis(name, args.width, args.size)
    if args.fuse_at:  # a misspelled F is an error, not a row of "no F fits"
        analysis.space(compute, SearchOptions(fuse_at=args.fuse_at, max_grid=(1, 1)))
    rows = []
    for g in args.grids:
        bar.set_postfix_str(f"{name} {grid_text(g)}")
        try:
            options = SearchOptions(grid=g, fuse_at=args.fuse_at, reuse=reuse_of(args))
            space = analysis.space(compute, options)
            plan = solve(space, link, "mw").fused
        except UsageError:  # the grid is larger than F, or a tile reads only padding
            plan = None
        if plan is None:
            rows.append([name, grid_text(g), "no F fits", *["-"] * (len(HEADERS) - 3)])
            bar.update()
            continue
        table = plan.table
        r = bench_table(table, args.repeats)
        refused = not math.isfinite(r["bf_lat"])
        rows.append(
            [
                name,
                grid_text(g),
                plan.candidate.tensor,
                str(table.num_paths),
                str(table.num_cuts),
                f"{bf_search_size(table):.2g}",
                _fmt(r["mw_s"] * 1e3, ".2f"),
                "refused" if refused else _fmt(r["bf_s"] * 1e3, ".2f"),
                _fmt(r["opt_s"] * 1e3, ".2f"),
                _fmt(r["opt_s"] / r["mw_s"], ".1f"),
                "-" if refused else _fmt(r["bf_s"] / r["opt_s"], ".2f"),
                _fmt(r["mw_lat"] * 1e3, ".3f"),
                "refused" if refused else _fmt(r["bf_lat"] * 1e3, ".3f"),
                _fmt(r["opt_lat"] * 1e3, ".3f"),
                "-" if refused else _fmt(r["mw_lat"] / r["bf_lat"], ".4f"),
                "-" if refused else _fmt(r["opt_lat"] / r["bf_lat"], ".4f"),
                _fmt(r["opt_lat"] / r["mw_lat"], ".4f"),
                *bench_free(analysis, plan, g, r["opt_lat"], args, compute, link),
            ]
        )
        bar.update()
    return rows


def build_parser() -> ToolParser:
    p = ToolParser(
        prog="bench_solvers.py",
        description="Median solve times and makespans of MW, BF and opt on one table per "
        "model and grid (F: MW's best at that grid, or --fuse-at).",
        epilog="Example: python tools/bench_solvers.py --models yolov2 --grids 2x2,8x8",
    )
    add_models_arg(p, PAPER_MODELS)
    p.add_argument(
        "--grids",
        dest="grids",
        type=grid_list,
        default=[(2, 2), (4, 4), (8, 8)],
        metavar="RxC,...",
        help="grids (default 2x2,4x4,8x8)",
    )
    p.add_argument(
        "--rate", dest="rate", type=positive_float, default=1.8, help="MB/s (default 1.8)"
    )
    p.add_argument("--fuse-at", dest="fuse_at", metavar="TENSOR", help="fix F instead of MW's best")
    p.add_argument(
        "--repeats",
        dest="repeats",
        type=count(1),
        default=5,
        help="runs per solver, median reported (default 5)",
    )
    p.add_argument(
        "--search-repeats",
        dest="search_repeats",
        type=count(0),
        default=3,
        help="runs of each model's whole default search with uniform and free tiles, median "
        "reported (default 3; 0 skips that table)",
    )
    add_cost_args(p)
    add_tiles_arg(p)
    add_reuse_arg(p)
    add_hidden_model_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        started = time.perf_counter()
        compute = compute_model(args.paper, args.edge_concurrency)
        link = LinkModel(rate_MBps=args.rate)
        rows = []
        with tqdm(total=len(args.models) * len(args.grids), desc="bench", disable=None) as bar:
            for name in args.models:
                rows.extend(bench_model(name, args, compute, link, bar))
        print(
            f"Solver benchmark at {args.rate:g} MB/s, {edge_label(compute)}, Table I speeds; "
            f"medians of {args.repeats} runs; F = "
            + (f"{args.fuse_at}" if args.fuse_at else "MW's best F at each grid")
        )
        print(format_table(HEADERS, rows))
        print(
            "t = solve-time ratio in this run; lat = simulated latency of the solver's schedule; "
            "K = cuts per path; bf size = P!·Π(non-dominated cuts), BF refuses above "
            f"{BF_MAX_STATES:.0e}; free = the boundary search of unequal tiles on that F and "
            "grid (with --tiles free), opt/free its gain over opt on equal tiles."
        )
        if args.search_repeats:
            searches = [bench_search(name, args, compute, link) for name in args.models]
            print(
                f"\nWhole default search (--solver best, grids up to 8x8), medians of "
                f"{args.search_repeats}: the space is built once, then solved with uniform and "
                "with free tiles; whole search = space + free solve."
            )
            print(format_table(SEARCH_HEADERS, searches))
        print(f"wall time: {time.perf_counter() - started:.1f} s")
        return 0

    return run_main("bench_solvers.py", body)


if __name__ == "__main__":
    sys.exit(main())
