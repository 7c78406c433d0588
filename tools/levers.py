"""What each lever beyond the paper buys: the default search with the levers added one by one.

For each model × rate the default search (`flcompile.search.solve(space, link, "best")`)
runs on five spaces, each adding one lever to the one before:

- paper: independent paths (`--no-reuse`), equal tiles (`--tiles uniform`), float32 sends;
- free: + unequal tiles (`--tiles free`);
- reuse: + edge-side reuse of what was sent (`--reuse --no-intermediate-reuse`);
- inter: + intermediate reuse (`--intermediate-reuse`), what flcompile does by default;
- fp16: + float16 sends (`--send-dtype float16`);

and reports each one's emitted latency (the best plan with fused layers, or NFL when that is
faster), NFL with float32 sends, the fluid bound, and the space bound of the default search
(`lower_bound_space_s`). "gap closed" is how much of the gap between the paper-setting plan
and the fluid bound the default closes: (paper - inter) / (paper - fluid), and, beside it,
what edge-side reuse alone closes: (paper - reuse) / (paper - fluid).

Writes DIR/levers.csv (one row per model × rate) and DIR/summary.md, which it prints.

    python tools/levers.py --models alexnet,squeezenet --rates 1.1,1.5,1.8,2.2,2.6,3.0 -o DIR
    python tools/levers.py --models alexnet,squeezenet --rates 1.1,1.8,3.0 --paper -o DIR
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import (
    ToolParser,
    add_cost_args,
    add_hidden_model_args,
    add_models_arg,
    add_rates_arg,
    compute_model,
    edge_label,
    format_table,
    load_analysis,
    run_main,
    write_output,
)
from tqdm import tqdm

from flcompile.atomic_output import check_writable
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.wire import FLOAT16, FLOAT32
from flcompile.search import SearchOptions, SearchResult, solve

# Each setting's search options, each adding one lever to the one before.
SETTINGS: dict[str, SearchOptions] = {
    "paper": SearchOptions(tiles="uniform", reuse=False, send_dtype=FLOAT32),
    "free": SearchOptions(tiles="free", reuse=False, send_dtype=FLOAT32),
    "reuse": SearchOptions(tiles="free", reuse=True, send_dtype=FLOAT32),
    "inter": SearchOptions(tiles="free", reuse=True, intermediate=True, send_dtype=FLOAT32),
    "fp16": SearchOptions(tiles="free", reuse=True, intermediate=True, send_dtype=FLOAT16),
}
DEFAULT_SETTING = "inter"  # what flcompile does without flags


@dataclass(frozen=True)
class Row:
    """One model at one rate: each setting's emitted latency, NFL and both bounds (seconds)."""

    model: str
    rate_MBps: float
    nfl_s: float
    paper_s: float
    free_s: float
    reuse_s: float
    inter_s: float
    fp16_s: float
    fluid_s: float
    space_s: float
    default_plan: str
    default_search_s: float

    @property
    def gap_closed(self) -> float:
        """(paper - inter) / (paper - fluid): the share of the gap the default closes."""
        return gap_closed(self.paper_s, self.inter_s, self.fluid_s)

    @property
    def reuse_gap_closed(self) -> float:
        """(paper - reuse) / (paper - fluid): what edge-side reuse of sends alone closes."""
        return gap_closed(self.paper_s, self.reuse_s, self.fluid_s)


def gap_closed(paper_s: float, latency_s: float, fluid_s: float) -> float:
    """(paper - X) / (paper - fluid): the share of the gap between the paper-setting plan
    and the fluid bound that a plan of latency X closes (NaN when there is no gap)."""
    gap = paper_s - fluid_s
    return (paper_s - latency_s) / gap if gap > 0 else float("nan")


def plan_words(result: SearchResult) -> str:
    """The emitted plan in a few words: "4x4 at conv2", "7x7 scan at conv5", or "NFL at pool5"."""
    plan = result.plan
    if result.fused is not None and plan is result.fused:
        scan = " scan" if plan.computed is not None else ""
        return f"{plan.tiling.grid[0]}x{plan.tiling.grid[1]}{scan} at {plan.candidate.tensor}"
    return f"NFL at {result.baselines.nfl.label}"


def lever_rows(name: str, compute: ComputeModel, rates: Sequence[float], analysis) -> list[Row]:
    """One model's rows: each setting's space built once, solved at every rate."""
    spaces = {key: analysis.space(compute, options) for key, options in SETTINGS.items()}
    rows = []
    for rate in rates:
        link = LinkModel(rate_MBps=rate)
        results = {}
        for key, space in spaces.items():
            started = time.perf_counter()
            results[key] = (solve(space, link, "best"), time.perf_counter() - started)
        default, seconds = results[DEFAULT_SETTING]
        rows.append(
            Row(
                name,
                rate,
                results["paper"][0].baselines.nfl.total_s,
                *(results[key][0].predicted_s for key in SETTINGS),
                default.lower_bound_s,
                default.lower_bound_space_s,
                plan_words(default),
                seconds,
            )
        )
    return rows


def summarize(rows: list[Row], header: list[str]) -> str:
    """Per model, means over the rates: speedup over NFL per setting, gap closed, bounds."""
    lines = [*header, ""]
    table = []
    for name in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == name]

        def mean(values) -> str:
            return f"{statistics.fmean(values):.3f}"

        table.append(
            [
                name,
                *(mean(r.nfl_s / getattr(r, f"{k}_s") for r in mine) for k in SETTINGS),
                f"{100 * statistics.fmean(r.reuse_gap_closed for r in mine):.0f} %",
                f"{100 * statistics.fmean(r.gap_closed for r in mine):.0f} %",
                mean(r.inter_s / r.space_s for r in mine),
                mean(r.space_s / r.fluid_s for r in mine),
                f"{statistics.median(r.default_search_s for r in mine):.1f} s",
            ]
        )
    headers = [
        "model",
        "paper",
        "+ free tiles",
        "+ reuse of sends",
        "+ intermediate reuse (default)",
        "+ float16",
        "gap closed: reuse of sends",
        "gap closed: default",
        "default/space LB",
        "space LB/fluid",
        "search",
    ]
    lines.append(
        "Speedup over NFL with float32 sends, mean over the rates, for the emitted plan of "
        "each setting; gap closed = (paper - X) / (paper - fluid bound), X the plan with reuse of "
        "sends, or the default; search = "
        "median seconds of the default setting's solve per rate."
    )
    lines += ["", format_table(headers, table, markdown=True), ""]
    detail = [
        [
            r.model,
            f"{r.rate_MBps:g}",
            *(f"{getattr(r, k) * 1e3:.1f}" for k in ("nfl_s", "paper_s", "free_s", "reuse_s")),
            f"{r.inter_s * 1e3:.1f}",
            f"{r.fp16_s * 1e3:.1f}",
            f"{r.fluid_s * 1e3:.1f}",
            f"{r.space_s * 1e3:.1f}",
            f"{100 * r.gap_closed:.0f} %",
            r.default_plan,
        ]
        for r in rows
    ]
    heads = ["model", "MB/s", "NFL", "paper", "+free", "+reuse", "+inter", "+fp16", "fluid"]
    heads.append("space LB")
    lines += [format_table([*heads, "gap closed", "default plan"], detail, markdown=True), ""]
    return "\n".join(lines)


def build_parser() -> ToolParser:
    """The tool's arguments."""
    p = ToolParser(description=__doc__.splitlines()[0])
    add_models_arg(p, ["alexnet", "squeezenet"])
    add_rates_arg(p, "1.1,1.5,1.8,2.2,2.6,3.0")
    add_cost_args(p)
    add_hidden_model_args(p)
    p.add_argument("-o", "--output", dest="out", required=True, help="output directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; returns the exit code."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        compute = compute_model(args.paper, args.edge_concurrency)
        out = check_writable(args.out)
        rows: list[Row] = []
        for name in tqdm(args.models, desc="models", unit="model", disable=None):
            analysis = load_analysis(name, args.width, args.size)
            rows += lever_rows(name, compute, args.rates, analysis)
        rerun = " ".join(sys.argv[1:] if argv is None else argv)
        header = [
            f"# Levers beyond the paper: {', '.join(args.models)}",
            "",
            f"- {edge_label(compute)}; f_end {compute.device_flops:g}, f_es "
            f"{compute.edge_flops:g} FLOP/s; no latency, result return ignored",
            f"- rates: {', '.join(f'{r:g}' for r in args.rates)} MB/s",
            f"- rerun: `python tools/levers.py {rerun}`",
        ]
        summary = summarize(rows, header)

        def write(folder: Path) -> None:
            with (folder / "levers.csv").open("w", newline="") as f:
                names = [*asdict(rows[0]), "gap_closed", "reuse_gap_closed"]
                writer = csv.DictWriter(f, fieldnames=names)
                writer.writeheader()
                for r in rows:
                    gaps = {"gap_closed": r.gap_closed, "reuse_gap_closed": r.reuse_gap_closed}
                    writer.writerow({**asdict(r), **gaps})
            (folder / "summary.md").write_text(summary)

        write_output(out, write)
        print(summary)
        print(f"wrote {out / 'levers.csv'}, {out / 'summary.md'}")
        return 0

    return run_main("levers.py", body)


if __name__ == "__main__":
    sys.exit(main())
