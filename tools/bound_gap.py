"""What keeps the best plan above the fluid lower bound: halos, or the pipeline and grid.

For each model it prints four latencies under the same simulator and cost model:

- the fluid lower bound (docs/design.md §4): infinitely fine tiles with no halo, any cut mix;
- the same relaxation on the finest real grid of each F (up to 8×8), whose per-cut costs
  include the halo redundancy of real tiles (overlapping raw input tiles, recomputed
  pixels); its minimum over F says what fine tiles can reach once halos are paid;
- the space lower bound: no schedule (any order, any cuts) of any F and grid the search
  covers finishes earlier (`flcompile.space_bound`; exact where the search proved a table's
  optimum);
- the best plan flcompile finds (default search).

When the second number is at or above the third, fine tiles lose to their halos and the
gap to the fluid bound is halo redundancy; when it is well below, the gap is pipeline start
and drain and grid granularity at the coarser grids the best plan uses. best/space measures the
solver (1.000: nothing in the space is faster); space/fluid what tiling itself costs.

best/space above 1 leaves open whether the solver or the bound is loose. `--exact-grids`
settles it on small grids: at the best plan's F it solves each grid with BF (the proven
optimum, any order and cuts) and prints optimum / the table's own lower bound
(`flcompile.space_bound.table_bound`). Above 1 there, the bound is what is loose.

    python tools/bound_gap.py --models alexnet,squeezenet,yolov2 --rate 1.8 [--paper]
    python tools/bound_gap.py --models alexnet --exact-grids 2x2,2x3,3x2 [--no-reuse]
"""

from __future__ import annotations

import sys

from _common import (
    PAPER_MODELS,
    ToolParser,
    add_hidden_model_args,
    add_models_arg,
    add_reuse_arg,
    compute_model,
    edge_label,
    grid_list,
    grid_text,
    load_analysis,
    reuse_of,
)

from flcompile.arg_types import positive
from flcompile.costs import LinkModel
from flcompile.errors import FlCompileError, SolverLimitError
from flcompile.lower_bound import fluid_lower_bound
from flcompile.search import SearchOptions, SearchSpace, solve
from flcompile.space_bound import table_bound

FINEST = (8, 8)


def halo_bound(space: SearchSpace, link: LinkModel) -> tuple[float, str]:
    """The smallest fluid bound over F of the finest grid's tiled costs, and where."""
    best, where = float("inf"), "-"
    for choice in space.choices:
        h, w = choice.candidate.shape[2], choice.candidate.shape[3]
        if choice.grid != (min(FINEST[0], h), min(FINEST[1], w)):
            continue
        table = space.table(choice, link)
        value = fluid_lower_bound(
            table.device_s.sum(axis=0),
            table.link_s.sum(axis=0),
            table.edge_s.sum(axis=0),
            choice.fused.rest_s,
            space.compute.edge_concurrency,
        )
        if value < best:
            best, where = value, f"{choice.candidate.tensor} {choice.grid[0]}x{choice.grid[1]}"
    return best, where


def exact_rows(
    analysis, compute, link: LinkModel, fused: str, grids: list, reuse: bool
) -> list[tuple[str, float, float]]:
    """(grid, BF's proven optimum, the table's lower bound) at F = `fused` for each grid that
    BF accepts (the others are left out, said on stderr)."""
    rows = []
    for grid in grids:
        options = SearchOptions(grid=grid, fuse_at=fused, tiles="uniform", reuse=reuse)
        try:
            result = solve(analysis.space(compute, options), link, "bf")
        except SolverLimitError as e:
            print(f"bound_gap: {fused} {grid_text(grid)} left out: {e.one_line()}", file=sys.stderr)
            continue
        if result.fused is not None:
            rows.append(
                (grid_text(grid), result.fused.predicted_s, table_bound(result.fused.table))
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = ToolParser(prog="bound_gap.py", description=__doc__.split("\n\n")[0])
    add_models_arg(parser, PAPER_MODELS)
    parser.add_argument("--rate", type=positive, default=1.8, help="MB/s (default 1.8)")
    parser.add_argument("--paper", action="store_true", help="unlimited edge (Eq. 4)")
    add_reuse_arg(parser)
    add_hidden_model_args(parser)
    parser.add_argument(
        "--exact-grids",
        type=grid_list,
        default=[],
        metavar="RxC,...",
        help="also solve these grids with BF at the best plan's F and print optimum / bound",
    )
    args = parser.parse_args(argv)
    compute = compute_model(args.paper)
    link = LinkModel(args.rate)
    reuse = reuse_of(args)
    words = "edge-side reuse" if reuse else "independent paths"
    print(f"{edge_label(compute)}, {args.rate} MB/s, Table I speeds, {words}; latencies in ms")
    print(
        f"{'model':<12} {'fluid LB':>9} {'halo LB':>9} {'space LB':>9} {'best':>9} {'NFL':>9} "
        f"{'best/space':>10} {'space/fluid':>11}  halo LB at"
    )
    for name in args.models:
        try:
            analysis = load_analysis(name, args.width, args.size)
        except FlCompileError as e:
            print(f"bound_gap: error: {e.one_line()}", file=sys.stderr)
            return 2
        progress = sys.stderr.isatty()
        options = SearchOptions(max_grid=FINEST, reuse=reuse)
        space = analysis.space(compute, options, progress=progress)
        result = solve(space, link, "best")
        halo, where = halo_bound(space, link)
        fluid, space_lb = result.lower_bound_s, result.lower_bound_space_s
        print(
            f"{name:<12} {fluid * 1e3:>9.1f} {halo * 1e3:>9.1f} {space_lb * 1e3:>9.1f} "
            f"{result.predicted_s * 1e3:>9.1f} {result.baselines.nfl.total_s * 1e3:>9.1f} "
            f"{result.predicted_s / space_lb:>10.3f} {space_lb / fluid:>11.3f}  {where}"
        )
        if args.exact_grids and result.fused is not None:
            fused = result.fused.candidate.tensor
            for grid, optimum, bound in exact_rows(
                analysis, compute, link, fused, args.exact_grids, reuse
            ):
                print(
                    f"  {fused} {grid}: BF optimum {optimum * 1e3:.2f}, table bound "
                    f"{bound * 1e3:.2f}, optimum/bound {optimum / bound:.4f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
