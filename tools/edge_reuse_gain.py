"""Would reusing the edge's own intermediate results pay? A predicted-only benchmark.

Today's edge-side reuse (`flcompile.costs.reuse`) makes a path send only the pixels of what
crosses its cut that earlier paths have not sent, but the edge still computes every path's
whole region of every block node, halos included. With *intermediate reuse* (DeepThings'
data reuse) the edge would also keep what it has computed: path p's edge part computes, for
every block node, only the part of the path's region of that node's output that no earlier
path (in run order) has computed.

This tool prices that in the project's cost model for one plan family that is easy to state:
every path cut at the raw input (the device only slices), the paths in one of a few simple
orders (row-major, column-major, and the snake of each), uniform grids up to `--max-grid` at
every candidate F. Per path and node:

- new pixels = the path's region of the node's output (the receptive-field analysis'
  `AxisRegions.out`, row × column) less the union of the earlier paths' regions of it,
  counted exactly cell by cell on the node's output plane (`--cover exact`, the default), or
  as the at most two rectangles `flcompile.costs.rects.new_cover` gives (`--cover rects`,
  what an emitted copy could compute, an over-approximation);
- its FLOPs = the copy's FLOPs from the cost tables (`TileCosts.flops`: FLOPs per output
  pixel × the region's pixels) × new pixels / region pixels, priced by the compute model.

The link charges each path its new input pixels, exactly as today's send reuse does (the
search space's own `ReuseGeometry.run_bytes` at cut 0), and the project's simulator
(`flcompile.simulate.makespan`) scores the plan: link FIFO in order, the edge part of a path
when its bytes have arrived and the edge is free, then the fuse and the rest of the model.
On a serial edge (the default) the paths' edge parts run in run order, so every path finds
the earlier paths' results ready. With `--edge-concurrency` other than 1 the simulator does
not know that a path waits for the earlier paths it reads from, so that latency is
optimistic; the tool then also reports the best plan on a serial edge, which is a valid
schedule under any edge model.

Compared in the same run with: the plan flcompile emits by default, the paper-setting plan
(independent paths on equal tiles) and NFL, all from `tools/levers.py`'s settings and
`flcompile.search.solve(..., "best")`, and the fluid lower bound. "gap closed" is
(paper - X) / (paper - fluid), as in levers.py. The plans are predicted only: nothing here
is emitted or verified, since flcompile cannot emit such plans.

Prints a summary; with -o DIR also writes DIR/edge_reuse.csv (one row per model × rate)
and DIR/summary.md.

    python tools/edge_reuse_gain.py --models alexnet,squeezenet -o DIR
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from _common import (
    ToolParser,
    add_cost_args,
    add_hidden_model_args,
    add_max_grid_arg,
    add_models_arg,
    add_rates_arg,
    compute_model,
    edge_label,
    format_table,
    grid_text,
    load_analysis,
    run_main,
    write_output,
)
from levers import SETTINGS, gap_closed, plan_words
from tqdm import tqdm

from flcompile.atomic_output import check_writable
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.node_cost import node_work
from flcompile.costs.rects import new_cover, rect_area
from flcompile.costs.table import CostTable
from flcompile.passes.receptive_field import Tiling
from flcompile.search import GridChoice, SearchSpace, solve
from flcompile.simulate import makespan

COVERS = ("exact", "rects")


def run_orders(grid_shape: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """The simple run orders tried on an r×c grid (paths numbered row-major), by name.

    Args:
        grid_shape: (rows, columns).

    Returns:
        Distinct orders: row-major, column-major, and the snake (boustrophedon) of each.
    """
    rows, cols = grid_shape
    index = np.arange(rows * cols).reshape(rows, cols)
    snake = index.copy()
    snake[1::2] = snake[1::2, ::-1]
    column_snake = index.T.copy()
    column_snake[1::2] = column_snake[1::2, ::-1]
    named = {
        "row-major": index.reshape(-1),
        "column-major": index.T.reshape(-1),
        "snake": snake.reshape(-1),
        "column snake": column_snake.reshape(-1),
    }
    distinct: dict[tuple[int, ...], str] = {}
    for name, order in named.items():
        distinct.setdefault(tuple(int(p) for p in order), name)
    return {name: order for order, name in distinct.items()}


def node_regions(tiling: Tiling) -> np.ndarray:
    """(L, P, 4) every path's region (h0, h1, w0, w1) of every block node's output, as the
    receptive-field analysis gives it (what the node's copy computes), paths row-major."""
    axes = [tiling.axes(p) for p in range(tiling.num_paths)]
    return np.array(
        [
            [(h.out[n].start, h.out[n].stop, w.out[n].start, w.out[n].stop) for h, w in axes]
            for n in range(len(tiling.block.nodes))
        ],
        np.int64,
    ).reshape(len(tiling.block.nodes), tiling.num_paths, 4)


def new_pixels(regions: np.ndarray, order: Sequence[int], cover: str = "exact") -> np.ndarray:
    """Pixels of each path's region of each node's output that no earlier path computed.

    Args:
        regions: (L, P, 4) from `node_regions`.
        order: path indices in run order.
        cover: "exact" counts the new cells; "rects" counts the pixels of `new_cover`'s at
            most two rectangles (which may count some held pixels again).

    Returns:
        (P, L) new pixels, by path index.
    """
    nodes, paths = regions.shape[:2]
    out = np.zeros((paths, nodes))
    order = [int(p) for p in order]
    for node, rects in enumerate(regions.tolist()):
        if cover == "rects":
            for j, p in enumerate(order):
                held = [tuple(rects[q]) for q in order[:j]]
                out[p, node] = sum(rect_area(r) for r in new_cover(tuple(rects[p]), held))
            continue
        # Each cell's first path in run order: paint the regions last to first.
        first = np.full((max(r[1] for r in rects), max(r[3] for r in rects)), -1)
        for j in range(paths - 1, -1, -1):
            h0, h1, w0, w1 = rects[order[j]]
            first[h0:h1, w0:w1] = j
        out[order, node] = np.bincount(first[first >= 0], minlength=paths)
    return out


def region_pixels(regions: np.ndarray) -> np.ndarray:
    """(P, L) pixels of each path's region of each node's output."""
    heights = regions[:, :, 1] - regions[:, :, 0]
    widths = regions[:, :, 3] - regions[:, :, 2]
    return (heights * widths).T.astype(float)


def edge_seconds(space: SearchSpace, choice: GridChoice, fraction: np.ndarray) -> np.ndarray:
    """(P,) each path's edge seconds at the raw-input cut when it computes `fraction` (P, L)
    of each of its node copies (the cost tables' FLOPs and bytes, scaled); a node with
    nothing new does not run."""
    costs = choice.costs
    nbytes = None if costs.node_bytes is None else costs.node_bytes * fraction
    work = node_work(costs.keys, costs.flops * fraction, nbytes)
    return np.where(fraction > 0, space.compute.edge_nodes_s(work), 0.0).sum(axis=1)


@dataclass(frozen=True, eq=False)
class RawCutPlan:
    """One (F, grid) with every path cut at the raw input, in one run order: what does not
    depend on the link.

    Attributes:
        choice: the (F, grid) of the search space.
        order_name: the run order's name (`run_orders`).
        order: path indices in run order.
        sent_bytes: (P,) by path, its new input bytes in this order (today's send reuse).
        edge_s: (P,) by path, its edge seconds computing its whole node copies (today).
        edge_reuse_s: (P,) the same with intermediate reuse.
    """

    choice: GridChoice
    order_name: str
    order: tuple[int, ...]
    sent_bytes: np.ndarray
    edge_s: np.ndarray
    edge_reuse_s: np.ndarray

    def table(self, space: SearchSpace, link: LinkModel, intermediate: bool) -> CostTable:
        """The search's own table of the (F, grid) at `link`, reduced to the raw-input cut,
        with this order's new bytes as link seconds (a path that sends nothing waits for the
        link to drain, as under reuse) and the chosen edge seconds. Only valid for
        `self.order`."""
        table = space.table(self.choice, link)
        link_s = np.asarray(link.send_s(self.sent_bytes), float)[:, None]
        edge = self.edge_reuse_s if intermediate else self.edge_s
        return replace(
            table,
            device_s=table.device_s[:, :1],
            link_s=link_s,
            edge_s=edge[:, None],
            reuse=None,
            waits=True,
        )


def raw_cut_plans(
    space: SearchSpace, max_grid: tuple[int, int], cover: str, name: str
) -> list[RawCutPlan]:
    """Every (F, grid) within `max_grid` in every run order, with every path cut at the raw
    input (only grids the space plans with reuse: at most 64 paths)."""
    choices = [
        c
        for c in space.choices
        if c.grid[0] <= max_grid[0] and c.grid[1] <= max_grid[1] and space.reuse_for(c)
    ]
    plans = []
    for choice in tqdm(choices, desc=f"{name}: new pixels", unit="grid", disable=None):
        regions = node_regions(choice.tiling)
        area = region_pixels(regions)
        today = edge_seconds(space, choice, np.ones_like(area))
        for order_name, order in run_orders(choice.grid).items():
            new = new_pixels(regions, order, cover)
            fraction = np.divide(new, area, out=np.zeros_like(area), where=area > 0)
            sent = np.empty(len(order))
            zero_cuts = np.zeros((1, len(order)), np.intp)
            sent[list(order)] = choice.geometry.run_bytes(np.array([order]), zero_cuts)[0]
            plans.append(
                RawCutPlan(
                    choice, order_name, order, sent, today, edge_seconds(space, choice, fraction)
                )
            )
    return plans


@dataclass(frozen=True)
class Best:
    """The best raw-cut plan found at one link: its latency and where it is."""

    latency_s: float
    fused: str
    grid: tuple[int, int]
    order: str

    @property
    def words(self) -> str:
        """e.g. 4x4 at conv2 (row-major)."""
        return f"{grid_text(self.grid)} at {self.fused} ({self.order})"


NONE = Best(float("inf"), "-", (0, 0), "-")


def best_raw_plans(
    space: SearchSpace, plans: Sequence[RawCutPlan], link: LinkModel, serial: bool
) -> tuple[Best, Best, Best]:
    """The best raw-cut plans at one link: with send reuse only (today's edge work), with
    intermediate reuse, and the latter on a serial edge (when `serial`; else the same).

    Args:
        space: the search space (reuse on).
        plans: from `raw_cut_plans`.
        link: the link.
        serial: also score intermediate reuse on a serial edge.
    """
    best = [NONE, NONE, NONE]
    for plan in plans:
        cuts = [0] * len(plan.order)
        inter = plan.table(space, link, True)
        tables = [plan.table(space, link, False), inter]
        tables.append(replace(inter, edge_concurrency=1) if serial else inter)
        for slot, table in enumerate(tables):
            latency = makespan(table, plan.order, cuts)
            if latency < best[slot].latency_s:
                choice = plan.choice
                best[slot] = Best(latency, choice.candidate.tensor, choice.grid, plan.order_name)
    return best[0], best[1], best[2]


@dataclass(frozen=True)
class Row:
    """One model at one rate (seconds): the raw-cut plans and what they are compared with."""

    model: str
    rate_MBps: float
    nfl_s: float
    paper_s: float
    default_s: float
    fluid_s: float
    raw_send_reuse_s: float
    inter_reuse_s: float
    inter_reuse_serial_s: float
    inter_plan: str
    default_plan: str

    def gap_closed(self, latency_s: float) -> float:
        """(paper - X) / (paper - fluid), as tools/levers.py."""
        return gap_closed(self.paper_s, latency_s, self.fluid_s)


def model_rows(
    name: str,
    compute: ComputeModel,
    rates: Sequence[float],
    analysis,
    max_grid: tuple[int, int],
    cover: str,
) -> list[Row]:
    """One model's rows: levers.py's paper and default settings and the raw-cut plans."""
    paper_space = analysis.space(compute, SETTINGS["paper"])
    space = analysis.space(compute, SETTINGS["reuse"])
    plans = raw_cut_plans(space, max_grid, cover, name)
    serial = compute.edge_concurrency != 1
    rows = []
    for rate in tqdm(rates, desc=f"{name}: rates", unit="rate", disable=None):
        link = LinkModel(rate_MBps=rate)
        paper, default = solve(paper_space, link, "best"), solve(space, link, "best")
        sent, inter, inter_serial = best_raw_plans(space, plans, link, serial)
        rows.append(
            Row(
                name,
                rate,
                paper.baselines.nfl.total_s,
                paper.predicted_s,
                default.predicted_s,
                default.lower_bound_s,
                sent.latency_s,
                inter.latency_s,
                inter_serial.latency_s,
                inter.words,
                plan_words(default),
            )
        )
    return rows


def summarize(rows: list[Row], header: list[str], serial_column: bool) -> str:
    """Per model means over the rates, then one line per model and rate."""
    lines = [*header, ""]
    keys = ["paper_s", "default_s", "raw_send_reuse_s", "inter_reuse_s"]
    heads = ["paper", "default", "raw, send reuse", "raw, + intermediate reuse"]
    if serial_column:
        keys.append("inter_reuse_serial_s")
        heads.append("+ intermediate reuse, serial edge")
    table = []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        speedups = [f"{statistics.fmean(r.nfl_s / getattr(r, k) for r in mine):.3f}" for k in keys]
        gaps = [
            f"{100 * statistics.fmean(r.gap_closed(getattr(r, k)) for r in mine):.0f} %"
            for k in ("default_s", "inter_reuse_s")
        ]
        table.append([model, *speedups, *gaps])
    lines.append(
        "Speedup over NFL (float32 sends), mean over the rates; gap closed = (paper - X) / "
        "(paper - fluid bound), X the default plan or the best raw-cut plan with "
        "intermediate reuse. Predicted only: these plans are not emitted or verified."
    )
    gap_heads = ["gap closed: default", "gap closed: intermediate reuse"]
    lines += ["", format_table(["model", *heads, *gap_heads], table, markdown=True), ""]
    detail = [
        [
            r.model,
            f"{r.rate_MBps:g}",
            *(f"{getattr(r, k) * 1e3:.1f}" for k in ("nfl_s", "fluid_s", *keys)),
            f"{100 * r.gap_closed(r.inter_reuse_s):.0f} %",
            r.inter_plan,
            r.default_plan,
        ]
        for r in rows
    ]
    lines += [
        "Latencies in ms:",
        "",
        format_table(
            ["model", "MB/s", "NFL", "fluid", *heads, "gap closed", "intermediate plan", "default"],
            detail,
            markdown=True,
        ),
        "",
    ]
    return "\n".join(lines)


def build_parser() -> ToolParser:
    """The tool's arguments."""
    p = ToolParser(description=__doc__.splitlines()[0])
    add_models_arg(p, ["squeezenet"])
    add_rates_arg(p, "1.1,1.5,1.8,2.2,2.6,3.0")
    add_cost_args(p)
    add_hidden_model_args(p)
    add_max_grid_arg(p, "largest raw-cut grid tried; at most 64 paths")
    p.add_argument(
        "--cover",
        dest="cover",
        choices=COVERS,
        default="exact",
        help="new pixels of a node: exact cells (default), or new_cover's two rectangles",
    )
    p.add_argument("-o", "--output", dest="out", help="output directory for the CSV and summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns the exit code."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        compute = compute_model(args.paper, args.edge_concurrency)
        out = None if args.out is None else check_writable(args.out)
        rows: list[Row] = []
        for name in args.models:
            analysis = load_analysis(name, args.width, args.size)
            rows += model_rows(name, compute, args.rates, analysis, args.max_grid, args.cover)
        rerun = " ".join(sys.argv[1:] if argv is None else argv)
        header = [
            f"# Intermediate reuse on the edge: {', '.join(args.models)}",
            "",
            f"- {edge_label(compute)}; f_end {compute.device_flops:g}, f_es "
            f"{compute.edge_flops:g} FLOP/s; no latency, result return ignored",
            f"- raw-cut plans: every path cut at the raw input, uniform grids up to "
            f"{grid_text(args.max_grid)}, best of row-major, column-major and snake orders; "
            f"new pixels counted {'exactly' if args.cover == 'exact' else 'as new_cover'}",
            f"- rates: {', '.join(f'{r:g}' for r in args.rates)} MB/s",
            f"- rerun: `python tools/edge_reuse_gain.py {rerun}`",
        ]
        summary = summarize(rows, header, compute.edge_concurrency != 1)
        print(summary)
        if out is None:
            return 0

        def write(folder: Path) -> None:
            with (folder / "edge_reuse.csv").open("w", newline="") as f:
                names = [*asdict(rows[0]), "gap_closed_default", "gap_closed_inter"]
                writer = csv.DictWriter(f, fieldnames=names)
                writer.writeheader()
                for r in rows:
                    writer.writerow(
                        {
                            **asdict(r),
                            "gap_closed_default": r.gap_closed(r.default_s),
                            "gap_closed_inter": r.gap_closed(r.inter_reuse_s),
                        }
                    )
            (folder / "summary.md").write_text(summary)

        write_output(out, write)
        print(f"wrote {out / 'edge_reuse.csv'}, {out / 'summary.md'}")
        return 0

    return run_main("edge_reuse_gain.py", body)


if __name__ == "__main__":
    sys.exit(main())
