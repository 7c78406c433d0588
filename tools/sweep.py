"""Sweep the link rate and compare the solvers, as in the paper's Fig. 4.

For each model × rate, every solver's plan is scored by flcompile's one simulator
(`flcompile.simulate`), so the numbers compare:

- nfl: the best single cut of the untiled model (local-only and full offload included);
- bf_2x2: Brute Force at grid 2x2 for every F it admits, best over F (refusals are noted);
- mw_2x2 / opt_2x2: MW / opt at grid 2x2, best over F;
- mw_kxk: MW over every F and every grid up to --max-grid, best of all;
- opt_kxk: `flcompile --solver best`, i.e. `flcompile.search.solve(space, link, "best")`
  (MW on every F and grid, then opt on search.shortlist of them, then, with `--tiles free`,
  the boundary search of `flcompile.tile_search`), best of all;
- uniform_kxk: the best plan of that same search with equal tiles only (what `--tiles
  uniform` returns: the boundary search runs after the uniform grids are solved); with
  `--tiles uniform` it equals opt_kxk;
- lower_bound_s (a column of every row): min(NFL, the fluid bound of every F), as
  `flcompile.search.solve` reports it;
- lower_bound_space_s (a column of every row): the search's bound on every plan of its
  space (every F and grid up to --max-grid, any order and cuts; `flcompile.space_bound`).

The predicted_s of an FL solver is its best plan with fused layers, even when NFL is faster
(flcompile would then emit NFL). Each model's search space (`flcompile.search.SearchSpace`:
every (F, grid) tiled, with its FLOPs and bytes) is built once; per rate it is solved again.

Writes DIR/sweep.csv (one row per model × rate × solver), DIR/sweep.png (Fig. 4's layout:
one panel per model, inference time vs rate) and DIR/summary.md (speedups, solver ratios and
solve times, which it also prints). Every figure says which edge model produced it.

Rerun:
    python tools/sweep.py --models alexnet,squeezenet,yolov2 --rates 1.1:3.0:0.1 \
        -o /tmp/sweep_serial
    python tools/sweep.py --models alexnet,squeezenet,yolov2 --rates 1.1:3.0:0.1 --paper \
        -o /tmp/sweep_paper
    python tools/sweep.py --models alexnet,squeezenet,yolov2 --rates 1.1:3.0:0.1 \
        --send-dtype float16 -o /tmp/sweep_fp16
    python tools/sweep.py --models alexnet,squeezenet --rates 1.1:3.0:0.1 --reuse \
        -o /tmp/sweep_reuse
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    PAPER_MODELS,
    ToolParser,
    add_cost_args,
    add_hidden_model_args,
    add_max_grid_arg,
    add_models_arg,
    add_rates_arg,
    add_reuse_arg,
    add_tiles_arg,
    compute_model,
    edge_label,
    format_table,
    grid_text,
    intermediate_of,
    load_analysis,
    median,
    reuse_of,
    run_main,
    timed,
    write_output,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from flcompile.atomic_output import check_writable
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.table import CostTable
from flcompile.costs.untiled import baselines
from flcompile.costs.wire import DEFAULT_SEND_DTYPE, SEND_DTYPES
from flcompile.errors import SolverLimitError
from flcompile.plans import FusedPlan
from flcompile.search import (
    SOLVERS,
    GridChoice,
    SearchOptions,
    SearchResult,
    SearchSpace,
    solve,
)
from flcompile.simulate import makespan

SOLVER_ROWS = ("nfl", "bf_2x2", "mw_2x2", "opt_2x2", "mw_kxk", "uniform_kxk", "opt_kxk")
COLUMNS = (
    "model",
    "rate_MBps",
    "tiles",
    "solver",
    "grid",
    "F",
    "predicted_s",
    "nfl_s",
    "lower_bound_s",
    "lower_bound_space_s",
    "solve_s",
    "edge_concurrency",
    "note",
)
# Equal within this relative tolerance counts as equal (opt vs BF, MW vs BF).
REL_TOL = 1e-9
LINES = (  # (solver row, label, style)
    ("nfl", "NFL", {"color": "tab:red", "marker": "^"}),
    ("bf_2x2", "BF (2×2)", {"color": "tab:green", "marker": "s"}),
    ("mw_2x2", "MW (2×2)", {"color": "tab:orange", "marker": "o"}),
    ("mw_kxk", "MW (k×k)", {"color": "tab:blue", "marker": "D"}),
    ("opt_kxk", "opt (k×k)", {"color": "tab:purple", "marker": "*"}),
)
# With --tiles free, the same search's best plan with equal tiles.
UNIFORM_LINE = ("uniform_kxk", "opt (k×k), equal tiles", {"color": "tab:gray", "marker": "x"})


@dataclass(frozen=True)
class Row:
    """One CSV row: one solver's best plan for one model and rate."""

    model: str
    rate_MBps: float
    tiles: str
    solver: str
    grid: str
    F: str
    predicted_s: float
    nfl_s: float
    lower_bound_s: float
    lower_bound_space_s: float
    solve_s: float
    edge_concurrency: int
    note: str = ""


def _best(scores: dict[int, float], among: Sequence[int]) -> int | None:
    """The index with the least score among `among` (first on ties), or None."""
    best = None
    for i in among:
        s = scores.get(i, math.inf)
        if math.isfinite(s) and (best is None or s < scores[best]):
            best = i
    return best


@dataclass
class _Scores:
    """Per (F, grid) index: each solver's simulated latency and its solve seconds."""

    latency: dict[int, float] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)

    def solve(self, solver: str, table: CostTable, i: int) -> None:
        """Run `solver` on table i unless it already ran there."""
        if i in self.latency:
            return
        started = time.perf_counter()
        try:
            schedule = SOLVERS[solver](table)
            self.latency[i] = makespan(table, schedule.order, schedule.cuts)
        except SolverLimitError:
            self.latency[i] = math.inf
        self.seconds[i] = time.perf_counter() - started

    def total_s(self, among: Sequence[int]) -> float:
        return sum(self.seconds.get(i, 0.0) for i in among)

    @staticmethod
    def best(*scores: _Scores) -> _Scores:
        """Per index, the least latency of several solvers, and their seconds together."""
        merged = _Scores()
        for s in scores:
            for i, latency in s.latency.items():
                merged.latency[i] = min(latency, merged.latency.get(i, math.inf))
                merged.seconds[i] = merged.seconds.get(i, 0.0) + s.seconds[i]
        return merged


def _record_runs(result: SearchResult, space: SearchSpace, scores: dict[str, _Scores]) -> None:
    """Copy the search's solver runs on equal tiles into the per-solver scores, by index in
    the space (the boundary search's unequal tilings are not in the space)."""
    index = {(c.candidate.tensor, c.grid): i for i, c in enumerate(space.choices)}
    for run in result.runs:
        if not run.plan.tiling.uniform or run.solver not in scores:  # scan plans: no table
            continue
        i = index[(run.plan.candidate.tensor, run.plan.tiling.grid)]
        scores[run.solver].latency[i] = run.predicted_s
        scores[run.solver].seconds[i] = run.seconds


def sweep_rate(
    name: str, space: SearchSpace, rate: float, max_grid: tuple[int, int], tiles: str
) -> tuple[list[Row], dict[str, float]]:
    """Every solver's row for one model at one rate, and the seconds spent outside solvers."""
    compute = space.compute
    link = LinkModel(rate_MBps=rate)
    nfl_time, base = timed(lambda: baselines(space.model, compute, link))
    nfl_s = base.nfl.total_s
    search_time, result = timed(lambda: solve(space.within(max_grid), link, "best"))

    items = space.choices
    rows_max, cols_max = max_grid
    kxk = [i for i, it in enumerate(items) if it.grid[0] <= rows_max and it.grid[1] <= cols_max]
    two = [i for i, it in enumerate(items) if it.grid == (2, 2)]
    mw, opt, bf = _Scores(), _Scores(), _Scores()
    _record_runs(result, space, {"mw": mw, "opt": opt})
    uniform_solve = mw.total_s(kxk) + opt.total_s(kxk)
    best_solve = uniform_solve + result.stats.boundaries_s
    outside = search_time - uniform_solve - result.stats.boundaries_s
    for i in two:  # every F at 2x2, with what the shortlist did not cover
        table = space.table(items[i], link)
        for scores, solver in ((mw, "mw"), (opt, "opt"), (bf, "bf")):
            scores.solve(solver, table, i)
    notes = _contract_notes(items, two, mw, opt, bf)

    common = {"model": name, "rate_MBps": rate, "tiles": tiles, "nfl_s": nfl_s}
    common["lower_bound_s"] = result.lower_bound_s
    common["lower_bound_space_s"] = result.lower_bound_space_s
    common["edge_concurrency"] = compute.edge_concurrency
    rows = _Rows(common, items)
    return [
        rows.nfl(base.nfl.label, nfl_time),
        rows.best_of("bf_2x2", bf, two, "; ".join(notes)),
        rows.best_of("mw_2x2", mw, two),
        rows.best_of("opt_2x2", opt, two),
        rows.best_of("mw_kxk", mw, kxk),
        rows.best_of("uniform_kxk", _Scores.best(mw, opt), kxk),
        rows.search(result.fused, best_solve),
    ], {"tables and bounds": outside}


def _contract_notes(
    items: Sequence[GridChoice], two: list[int], mw: _Scores, opt: _Scores, bf: _Scores
) -> list[str]:
    """Where, per F at 2x2, opt differs from BF, MW beats BF, or BF refused (design §5)."""
    ran = [i for i in two if math.isfinite(bf.latency[i])]
    lat = {i: (mw.latency[i], opt.latency[i], bf.latency[i]) for i in ran}
    notes = []
    for label, bad in (
        ("bf refused F", [i for i in two if i not in ran]),
        ("opt != bf at F", [i for i in ran if abs(lat[i][1] - lat[i][2]) > REL_TOL * lat[i][2]]),
        ("mw < bf at F", [i for i in ran if lat[i][0] < lat[i][2] * (1 - REL_TOL)]),
    ):
        if bad:
            notes.append(f"{label}: {' '.join(items[i].candidate.tensor for i in bad)}")
    return notes


@dataclass(frozen=True)
class _Rows:
    """Makes one model's rows at one rate.

    Attributes:
        common: the columns every row shares (model, rate, NFL, bound, edge concurrency).
        items: the space's (F, grid) choices, which the scores index.
    """

    common: dict[str, Any]
    items: Sequence[GridChoice]

    def _row(self, solver: str, grid: str, F: str, predicted_s: float, **rest: Any) -> Row:
        return Row(**self.common, solver=solver, grid=grid, F=F, predicted_s=predicted_s, **rest)

    def nfl(self, label: str, seconds: float) -> Row:
        """The best single cut's row."""
        nfl_s = self.common["nfl_s"]
        return self._row("nfl", "1x1", label, nfl_s, solve_s=seconds, note="single cut")

    def best_of(self, solver: str, scores: _Scores, among: list[int], note: str = "") -> Row:
        """The row of the best score among the indices `among`, or "no plan"."""
        index = _best(scores.latency, among)
        solve_s = scores.total_s(among)
        if index is None:
            return self._row(solver, "-", "-", math.nan, solve_s=solve_s, note=note or "no plan")
        item = self.items[index]
        latency = scores.latency[index]
        return self._row(
            solver, grid_text(item.grid), item.candidate.tensor, latency, solve_s=solve_s, note=note
        )

    def search(self, plan: FusedPlan | None, solve_s: float) -> Row:
        """opt_kxk: the search's best plan with fused layers, and what flcompile emits."""
        if plan is None:
            return self._row("opt_kxk", "-", "-", math.nan, solve_s=solve_s, note="no plan")
        emits = "" if plan.predicted_s < self.common["nfl_s"] else "; flcompile would emit NFL"
        rows, cols = plan.tiling.bounds
        h, w = ("/".join(map(str, b)) for b in (rows, cols))
        unequal = "" if plan.tiling.uniform else f"; unequal tiles h {h} w {w}"
        return self._row(
            "opt_kxk",
            grid_text(plan.tiling.grid),
            plan.candidate.tensor,
            plan.predicted_s,
            solve_s=solve_s,
            note=f"found by {plan.solver}{unequal}{emits}",
        )


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    """DIR/sweep.csv: one row per model × rate × solver."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([getattr(r, c) for c in COLUMNS])


def plot(path: Path, rows: Sequence[Row], models: Sequence[str], title: str, log_y: bool) -> None:
    """DIR/sweep.png: Fig. 4's layout, one panel per model, inference time (ms) vs rate."""
    fig = Figure(figsize=(4.6 * len(models), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    for ax, (letter, name) in zip(axes, enumerate(models), strict=True):
        mine = [r for r in rows if r.model == name]
        rates = sorted({r.rate_MBps for r in mine})
        free = any(r.tiles == "free" for r in mine)
        for solver, label, style in (*LINES, UNIFORM_LINE) if free else LINES:
            ys = {r.rate_MBps: r.predicted_s * 1e3 for r in mine if r.solver == solver}
            ax.plot(rates, [ys.get(x, math.nan) for x in rates], label=label, ms=4, **style)
        lb = {r.rate_MBps: r.lower_bound_s * 1e3 for r in mine if r.solver == "nfl"}
        ax.plot(rates, [lb[x] for x in rates], "k--", label="fluid lower bound")
        space = {r.rate_MBps: r.lower_bound_space_s * 1e3 for r in mine if r.solver == "nfl"}
        ax.plot(rates, [space[x] for x in rates], "k:", label="space lower bound")
        ax.set_xlabel("Transmission rate (MB/s)")
        ax.set_ylabel("DNN inference time (ms)")
        ax.set_title(f"({chr(ord('a') + letter)}) {name}")
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)


def _mean_max(values: Sequence[float]) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "-"
    return f"{sum(values) / len(values):.3f} / {max(values):.3f}"


QUALITY_COLUMNS = (
    "model",
    "rates",
    "speedup opt(k×k) vs NFL",
    "speedup MW(k×k) vs NFL",
    "MW/BF 2×2 mean / max",
    "opt/BF 2×2 mean / max",
    "best/LB mean / max",
    "best/space LB mean / max",
    "space LB/LB mean / max",
    "uniform/free mean / max",
    "FL beats NFL",
    "BF refused / opt≠BF (rates)",
)


def summarize(
    rows: Sequence[Row],
    models: Sequence[str],
    compute: ComputeModel,
    header: Sequence[str],
) -> str:
    """The markdown summary: speedups, solver ratios and median solve times per model."""
    quality = []
    times = []
    for name in models:
        by: dict[str, dict[float, Row]] = {}
        for r in rows:
            if r.model == name:
                by.setdefault(r.solver, {})[r.rate_MBps] = r
        quality.append(_quality_cells(name, by))
        rates = sorted(by["nfl"])
        times.append(
            [name] + [f"{median(by[s][x].solve_s for x in rates) * 1e3:.1f}" for s in SOLVER_ROWS]
        )
    q = format_table(list(QUALITY_COLUMNS), quality, markdown=True)
    t = format_table(["model", *(f"{s} ms" for s in SOLVER_ROWS)], times, markdown=True)
    lines = [*header, "", q, "", "Median solve time per rate (all F and grids of the row):", "", t]
    lines += [
        "",
        "speedup = mean over the rates of nfl_s / predicted_s (the solver's best plan with "
        "fused layers, even where NFL is faster); MW/BF and opt/BF compare the best over F at "
        "2×2 at each rate; best = min(opt(k×k), NFL), what flcompile emits; LB = "
        "min(NFL, fluid bound over all F); space LB = min(NFL, a bound on every schedule of "
        "every F and grid searched), so best/space LB measures the solver and space LB/LB "
        "what tiling itself costs; uniform/free = the search's best plan with equal "
        "tiles / its best (1.000 under --tiles uniform). All numbers come from one simulator; "
        f"{edge_label(compute)}.",
    ]
    return "\n".join(lines) + "\n"


def _quality_cells(name: str, by: dict[str, dict[float, Row]]) -> list[str]:
    """One model's QUALITY_COLUMNS, from its rows by solver and rate."""
    rates = sorted(by["nfl"])

    def values(solver: str) -> list[float]:
        return [by[solver][x].predicted_s for x in rates]

    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(values(a), values(b), strict=True)]

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs)

    nfl, best = values("nfl"), values("opt_kxk")
    lbs = [by["nfl"][x].lower_bound_s for x in rates]
    spaces = [by["nfl"][x].lower_bound_space_s for x in rates]
    emitted = [min(b, n) for b, n in zip(best, nfl, strict=True)]  # what flcompile emits
    notes = [by["bf_2x2"][x].note for x in rates]
    return [
        name,
        str(len(rates)),
        f"{mean(ratio('nfl', 'opt_kxk')):.3f}",
        f"{mean(ratio('nfl', 'mw_kxk')):.3f}",
        _mean_max(ratio("mw_2x2", "bf_2x2")),
        _mean_max(ratio("opt_2x2", "bf_2x2")),
        _mean_max([e / b for e, b in zip(emitted, lbs, strict=True)]),
        _mean_max([e / b for e, b in zip(emitted, spaces, strict=True)]),
        _mean_max([s / b for s, b in zip(spaces, lbs, strict=True)]),
        _mean_max(ratio("uniform_kxk", "opt_kxk")),
        f"{sum(b < n for b, n in zip(best, nfl, strict=True))}/{len(rates)}",
        f"{sum('bf refused' in n for n in notes)}/{sum('opt != bf' in n for n in notes)}",
    ]


def build_parser() -> ToolParser:
    p = ToolParser(
        prog="sweep.py",
        description="Sweep the link rate; compare NFL, BF(2x2), MW(2x2), opt(2x2), MW(kxk) "
        "and opt(kxk) with one simulator; write sweep.csv, sweep.png and summary.md.",
        epilog="Example: python tools/sweep.py --models alexnet,squeezenet,yolov2 "
        "--rates 1.1:3.0:0.1 -o /tmp/sweep",
    )
    add_models_arg(p, PAPER_MODELS)
    add_rates_arg(p)
    add_max_grid_arg(p, "largest grid of the k×k rows")
    add_cost_args(p)
    p.add_argument(
        "--send-dtype",
        dest="send_dtype",
        choices=SEND_DTYPES,
        default=DEFAULT_SEND_DTYPE,
        help="the dtype of what the device sends; every plan and NFL is costed with it "
        "(default float32; tools/send_dtype_gain.py compares the two)",
    )
    add_tiles_arg(p)
    add_reuse_arg(p)
    p.add_argument("--log-y", dest="log_y", action="store_true", help="log-scale time axis")
    p.add_argument("-o", "--output", dest="out", required=True, help="output directory")
    add_hidden_model_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep; returns the exit code."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        started = time.perf_counter()
        compute = compute_model(args.paper, args.edge_concurrency)
        out = check_writable(args.out)
        swept = _sweep_models(args, compute)
        rows = swept.rows
        title = (
            f"{'Table I (--paper)' if args.paper else 'Table I speeds'}, "
            f"{edge_label(compute)}, grids up to {grid_text(args.max_grid)}, "
            f"{args.send_dtype} sends"
        )
        wall = time.perf_counter() - started
        rerun = " ".join(sys.argv[1:] if argv is None else argv)
        summary = summarize(rows, args.models, compute, _header(args, compute, swept, wall, rerun))

        def write(folder: Path) -> None:
            write_csv(folder / "sweep.csv", rows)
            plot(folder / "sweep.png", rows, args.models, title, args.log_y)
            (folder / "summary.md").write_text(summary)

        write_output(out, write)
        print(summary)
        print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.png'}, {out / 'summary.md'}")
        return 0

    return run_main("sweep.py", body)


@dataclass(frozen=True)
class _Swept:
    """Every model's rows, and where the time went.

    Attributes:
        rows: the rows of every model × rate × solver.
        build_s: per model, seconds of analysis and tiling (once per model).
        refresh: per rate, seconds outside the solvers, summed over every model and rate.
    """

    rows: list[Row]
    build_s: dict[str, float]
    refresh: dict[str, float]


def _sweep_models(args: argparse.Namespace, compute: ComputeModel) -> _Swept:
    """Build each model's space once and solve it at every rate."""
    rows: list[Row] = []
    build_s: dict[str, float] = {}
    refresh = {"tables and bounds": 0.0}
    # 2x2 is always tiled (the 2x2 rows), whatever --max-grid is.
    space_grid = (max(args.max_grid[0], 2), max(args.max_grid[1], 2))
    bar = tqdm(total=len(args.models) * len(args.rates), desc="sweep", unit="rate", disable=None)
    for name in args.models:
        bar.set_postfix_str(f"{name}: analysing")
        t0 = time.perf_counter()
        analysis = load_analysis(name, args.width, args.size)
        options = SearchOptions(
            max_grid=space_grid,
            send_dtype=args.send_dtype,
            reuse=reuse_of(args),
            intermediate=intermediate_of(args),
        )
        space = analysis.space(compute, options)
        build_s[name] = time.perf_counter() - t0
        for rate in args.rates:
            bar.set_postfix_str(f"{name} @ {rate:g} MB/s")
            new, spent = sweep_rate(name, space, rate, args.max_grid, args.tiles)
            rows.extend(new)
            for k, v in spent.items():
                refresh[k] += v
            bar.update()
    bar.close()
    return _Swept(rows, build_s, refresh)


def _header(
    args: argparse.Namespace, compute: ComputeModel, swept: _Swept, wall: float, rerun: str
) -> list[str]:
    """summary.md's first lines: the models, the edge model, costs, rates and wall time."""
    return [
        f"# Rate sweep: {', '.join(args.models)}",
        "",
        f"- **{edge_label(compute)}**" + (" (--paper)" if args.paper else " (flcompile's default)"),
        f"- edge-side reuse: {'on' if reuse_of(args) else 'off (independent paths)'}"
        + (", with intermediate reuse" if intermediate_of(args) else ""),
        f"- costs: f_end {compute.device_flops:g} FLOP/s, f_es {compute.edge_flops:g} "
        "FLOP/s (Table I), no overheads, no latency, result return ignored, "
        f"{args.send_dtype} sends",
        f"- rates: {len(args.rates)} from {min(args.rates):g} to {max(args.rates):g} MB/s; "
        f"k×k grids up to {grid_text(args.max_grid)}; --tiles {args.tiles}",
        f"- wall time: {wall:.1f} s (analysis + tiling once per model: "
        + ", ".join(f"{m} {s:.1f} s" for m, s in swept.build_s.items())
        + f"; per rate, tables and lower bounds {swept.refresh['tables and bounds']:.1f} s)",
        f"- rerun: `python tools/sweep.py {rerun}`",
    ]


if __name__ == "__main__":
    sys.exit(main())
