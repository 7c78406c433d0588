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

    python tools/bound_gap.py --models alexnet,squeezenet,yolov2 --rate 1.8 [--paper]
"""

from __future__ import annotations

import sys

from _common import PAPER_MODELS, ToolParser, add_models_arg, compute_model, edge_label

from flcompile.arg_types import positive
from flcompile.compile import analyse
from flcompile.costs import LinkModel
from flcompile.errors import FlCompileError
from flcompile.load import load_model
from flcompile.lower_bound import fluid_lower_bound
from flcompile.search import SearchOptions, SearchSpace, solve

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


def main(argv: list[str] | None = None) -> int:
    parser = ToolParser(prog="bound_gap.py", description=__doc__.split("\n\n")[0])
    add_models_arg(parser, PAPER_MODELS)
    parser.add_argument("--rate", type=positive, default=1.8, help="MB/s (default 1.8)")
    parser.add_argument("--paper", action="store_true", help="unlimited edge (Eq. 4)")
    args = parser.parse_args(argv)
    compute = compute_model(args.paper)
    link = LinkModel(args.rate)
    print(f"{edge_label(compute)}, {args.rate} MB/s, Table I speeds; latencies in ms")
    print(
        f"{'model':<12} {'fluid LB':>9} {'halo LB':>9} {'space LB':>9} {'best':>9} {'NFL':>9} "
        f"{'best/space':>10} {'space/fluid':>11}  halo LB at"
    )
    for name in args.models:
        try:
            analysis = analyse(load_model(name))
        except FlCompileError as e:
            print(f"bound_gap: error: {e.one_line()}", file=sys.stderr)
            return 2
        progress = sys.stderr.isatty()
        space = analysis.space(compute, SearchOptions(max_grid=FINEST), progress=progress)
        result = solve(space, link, "best")
        halo, where = halo_bound(space, link)
        fluid, space_lb = result.lower_bound_s, result.lower_bound_space_s
        print(
            f"{name:<12} {fluid * 1e3:>9.1f} {halo * 1e3:>9.1f} {space_lb * 1e3:>9.1f} "
            f"{result.predicted_s * 1e3:>9.1f} {result.baselines.nfl.total_s * 1e3:>9.1f} "
            f"{result.predicted_s / space_lb:>10.3f} {space_lb / fluid:>11.3f}  {where}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
