"""Time a whole compile of each zoo model, phase by phase, and the plan search on its own.

For each model, `flcompile.compile.compile_model` runs --repeats times (into a scratch
directory, with verification and --runs timing runs, as `flcompile MODEL --rate R` does);
the table shows the median seconds of each phase of CompileResult.phase_s (load, plan,
rewrite, write, verify, time), of the whole call and of its CPU time (user + system, all
threads: on a shared machine the steadier number to compare). Separately, on one analysis of
the model, it times `Analysis.search` with the MW-only solver over every F and grid up
to --max-grid and with the default "best" solver (medians of --repeats; --no-search skips
them). The predicted latency, NFL and the chosen F / grid are printed too, so a run describes
itself.

Targets (printed next to the numbers): MW search < 5 s for yolov2; a whole compile,
verification included, at most 10 s for alexnet, 25 s for vgg16 and 30 s for the others.

Rerun:
    python tools/bench_compile.py --models alexnet,squeezenet,yolov2,vgg16,resnet18,mobilenet_v2 \
        --rate 1.8 --repeats 3 --runs 3 -o /tmp/bench_compile
"""

from __future__ import annotations

import csv
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from _common import (
    ToolParser,
    add_cost_args,
    add_hidden_model_args,
    add_max_grid_arg,
    add_models_arg,
    add_reuse_arg,
    compute_model,
    count,
    edge_label,
    format_table,
    grid_text,
    intermediate_of,
    median,
    model_source,
    positive_float,
    reuse_of,
    run_main,
    write_output,
)
from tqdm import tqdm

from flcompile import models
from flcompile.atomic_output import check_writable
from flcompile.compile import CompileOptions, analyse, compile_model
from flcompile.costs import LinkModel
from flcompile.load import load_model
from flcompile.search import SearchOptions

PHASES = ("load", "plan", "rewrite", "write", "verify", "time")
MW_SEARCH_TARGET_S = 5.0  # for yolov2
COMPILE_TARGET_S = 30.0
COMPILE_TARGETS_S = {"alexnet": 10.0, "vgg16": 25.0}
COLUMNS = (
    "model",
    *(f"{p}_s" for p in PHASES),
    "total_s",
    "cpu_s",
    "mw_search_s",
    "best_search_s",
    "predicted_s",
    "nfl_s",
    "plan",
    "F",
    "grid",
    "solver",
    "verified",
    "edge_concurrency",
    "rate_MBps",
    "repeats",
)


def bench_model(name: str, args, options: CompileOptions, tmp: Path) -> dict:
    """Median phase times of --repeats compiles and of the MW-only and best searches."""
    source = model_source(name, args.width, args.size, tmp)
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    totals, cpus = [], []
    result = None
    for _ in range(args.repeats):
        started, cpu = time.perf_counter(), time.process_time()
        result = compile_model(source, None, options)
        totals.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        for p in PHASES:
            phases[p].append(result.phase_s.get(p, 0.0))
    searches = {"mw": float("nan"), "best": float("nan")}
    if args.search:
        analysis = analyse(load_model(source))
        for solver in searches:
            search_options = replace(options.search, solver=solver)
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                analysis.search(options.compute, options.link, search_options)
                times.append(time.perf_counter() - started)
            searches[solver] = median(times)
    found = result.result
    words = found.plan.metadata(found.baselines.nfl.total_s)
    return {
        "model": name,
        **{f"{p}_s": median(phases[p]) for p in PHASES},
        "total_s": median(totals),
        "cpu_s": median(cpus),
        "mw_search_s": searches["mw"],
        "best_search_s": searches["best"],
        "predicted_s": found.predicted_s,
        "nfl_s": found.baselines.nfl.total_s,
        "plan": found.plan.describe(),
        "F": words.get("fused_tensor", "-"),
        "grid": words.get("grid", "-"),
        "solver": found.plan.solver,
        "verified": None if result.verify is None else result.verify.passed,
        "edge_concurrency": options.compute.edge_concurrency,
        "rate_MBps": options.link.rate_MBps,
        "repeats": args.repeats,
    }


def _s(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def report(rows: Sequence[dict], args, compute) -> str:
    """The printed tables: phases and searches, then the plans, then the targets."""
    timing = format_table(
        ["model", *PHASES, "total", "CPU", "MW search", "best search"],
        [
            [
                r["model"],
                *(_s(r[f"{p}_s"]) for p in PHASES),
                _s(r["total_s"]),
                _s(r["cpu_s"]),
                _s(r["mw_search_s"]),
                _s(r["best_search_s"]),
            ]
            for r in rows
        ],
    )
    plans = format_table(
        ["model", "predicted ms", "NFL ms", "speedup", "plan", "F", "grid", "solver", "verified"],
        [
            [
                r["model"],
                f"{r['predicted_s'] * 1e3:.2f}",
                f"{r['nfl_s'] * 1e3:.2f}",
                f"{r['nfl_s'] / r['predicted_s']:.3f}x",
                r["plan"],
                r["F"],
                r["grid"],
                r["solver"],
                "-" if r["verified"] is None else str(r["verified"]),
            ]
            for r in rows
        ],
    )
    targets = []
    for r in rows:
        if r["model"] == "yolov2" and not math.isnan(r["mw_search_s"]):
            ok = r["mw_search_s"] < MW_SEARCH_TARGET_S
            targets.append(
                f"target MW search < {MW_SEARCH_TARGET_S:g} s for yolov2: "
                f"{r['mw_search_s']:.2f} s {'MET' if ok else 'MISSED'}"
            )
    for r in rows:
        target = COMPILE_TARGETS_S.get(r["model"], COMPILE_TARGET_S)
        ok = r["total_s"] <= target
        targets.append(
            f"target whole compile incl. verification <= {target:g} s: {r['model']} "
            f"{r['total_s']:.2f} s {'MET' if ok else 'MISSED'}"
        )
    head = (
        f"Compile benchmark at {args.rate:g} MB/s, {edge_label(compute)}, Table I speeds; "
        f"medians of {args.repeats} repeats (seconds); --runs {args.runs} timing runs per "
        "compile; "
        + (f"searches over grids up to {grid_text(args.max_grid)}" if args.search else "no search")
    )
    return "\n".join([head, "", timing, "", plans, "", *targets])


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """DIR/bench_compile.csv: one row per model."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def build_parser() -> ToolParser:
    p = ToolParser(
        prog="bench_compile.py",
        description="Median compile time per zoo model by phase, the MW-only and best search "
        "times, and the chosen plan.",
        epilog="Example: python tools/bench_compile.py --models yolov2 --repeats 1 -o /tmp/bc",
    )
    add_models_arg(p, models.NAMES)
    p.add_argument(
        "--rate", dest="rate", type=positive_float, default=1.8, help="MB/s (default 1.8)"
    )
    p.add_argument(
        "--repeats",
        dest="repeats",
        type=count(1),
        default=3,
        help="compiles and searches per model, medians reported (default 3)",
    )
    p.add_argument(
        "--runs",
        dest="runs",
        type=count(0),
        default=3,
        help="onnxruntime timing runs inside each compile; 0 skips timing (default 3)",
    )
    add_max_grid_arg(p, "largest grid searched")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip verification")
    p.add_argument(
        "--no-search",
        dest="search",
        action="store_false",
        help="skip the separate MW-only and best search timings",
    )
    add_cost_args(p)
    add_reuse_arg(p)
    p.add_argument("-o", "--output", dest="out", help="also write DIR/bench_compile.csv")
    add_hidden_model_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        started = time.perf_counter()
        compute = compute_model(args.paper, args.edge_concurrency)
        options = CompileOptions(
            compute=compute,
            link=LinkModel(rate_MBps=args.rate),
            # flcompile's defaults: reuse and intermediate reuse unless --paper says otherwise
            search=SearchOptions(
                max_grid=args.max_grid, reuse=reuse_of(args), intermediate=intermediate_of(args)
            ),
            verify=args.verify,
            runs=args.runs,
        )
        rows = []
        out = check_writable(args.out) if args.out else None
        with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
            for name in tqdm(args.models, desc="bench_compile", unit="model", disable=None):
                rows.append(bench_model(name, args, options, Path(tmp)))
                if out is not None:  # after every model, so a cut-short run keeps its rows
                    write_output(out, lambda d: write_csv(d / "bench_compile.csv", rows))
        print(report(rows, args, compute))
        if out is not None:
            print(f"wrote {out / 'bench_compile.csv'}")
        print(f"wall time: {time.perf_counter() - started:.1f} s")
        return 0

    return run_main("bench_compile.py", body)


if __name__ == "__main__":
    sys.exit(main())
