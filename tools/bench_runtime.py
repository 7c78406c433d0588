"""Measured against predicted latency: FL and NFL plans of zoo models through the testbed.

For each model and rate it compiles the FL plan (the default solver) and the NFL plan
(`--solver nfl`) at that rate, runs each through tools/testbed.py (a tc-shaped loopback at
the rate, the device CPU-throttled by --slowdown), and records the measured median
end-to-end latency, the plan's prediction at that rate, and the measured and predicted
FL-over-NFL speedups. Targets (not enforced here): measured within ±15 % of predicted,
measured speedup within 10 % of predicted.

The plans use the compiler's cost model (Table I speeds): measured cost profiles
(`flcompile profile`) are not used yet.

Writes DIR/bench_runtime.csv (one row per model × rate × plan), DIR/bench_runtime.png
(measured against predicted, with the ±15 % band) and DIR/runs/ (each run's reports).

Rerun:
    python tools/bench_runtime.py --models alexnet,squeezenet,resnet18 --rates 1.1,1.8,3.0 \\
        --frames 10 -o /tmp/bench_runtime
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import testbed
from _common import (
    ToolParser,
    add_hidden_model_args,
    add_models_arg,
    count,
    format_table,
    model_source,
    positive_float,
    rate_list,
    run_main,
    write_output,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from flcompile import cli
from flcompile.errors import BadInputError

PLANS = {"FL": [], "NFL": ["--solver", "nfl"]}
COLUMNS = [
    "model",
    "rate_MBps",
    "plan",
    "measured_s",
    "predicted_s",
    "ratio",
    "link_ratio",
    "speedup_measured",
    "speedup_predicted",
]
ACCURACY_BAND = 0.15


def compile_plan(source: str, rate: float, plan: str, out: Path) -> Path:
    """Compile `source` at `rate` into `out` as the FL or NFL plan, with per-path stages."""
    argv = [source, "--rate", f"{rate:g}", *PLANS[plan], "--emit-stages", "--runs", "0", "-q"]
    if cli.main([*argv, "-o", str(out)]) != 0:
        raise BadInputError(f"compiling {source} ({plan}) at {rate:g} MB/s failed")
    return out


def with_speedups(rows: list[dict]) -> list[dict]:
    """Each row with the FL-over-NFL speedups of its model and rate (NFL time / FL time)."""
    by_key = {(r["model"], r["rate_MBps"], r["plan"]): r for r in rows}
    for r in rows:
        fl = by_key.get((r["model"], r["rate_MBps"], "FL"))
        nfl = by_key.get((r["model"], r["rate_MBps"], "NFL"))
        both = fl is not None and nfl is not None
        r["speedup_measured"] = nfl["measured_s"] / fl["measured_s"] if both else None
        r["speedup_predicted"] = nfl["predicted_s"] / fl["predicted_s"] if both else None
    return rows


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """One row per model × rate × plan."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: r[k] for k in COLUMNS} for r in rows)


def plot(path: Path, rows: Sequence[dict]) -> None:
    """Measured against predicted latency, one marker per plan kind, with the ±15 % band."""
    fig = Figure(figsize=(5.0, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = 1.2 * max(max(r["measured_s"], r["predicted_s"]) for r in rows) * 1e3
    ax.plot([0, top], [0, top], color="grey", lw=1, label="measured = predicted")
    ax.fill_between(
        [0, top],
        [0, top * (1 - ACCURACY_BAND)],
        [0, top * (1 + ACCURACY_BAND)],
        color="grey",
        alpha=0.15,
        label="±15 %",
    )
    for plan, marker in (("FL", "o"), ("NFL", "s")):
        mine = [r for r in rows if r["plan"] == plan]
        ax.scatter(
            [r["predicted_s"] * 1e3 for r in mine],
            [r["measured_s"] * 1e3 for r in mine],
            marker=marker,
            label=plan,
        )
        for r in mine:
            ax.annotate(
                f"{r['model']} {r['rate_MBps']:g}",
                (r["predicted_s"] * 1e3, r["measured_s"] * 1e3),
                fontsize=6,
            )
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="predicted (ms)", ylabel="measured median (ms)")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=130)


def bench(args, result: Path) -> list[dict]:
    """Every model × rate × plan through the testbed; each run's files go to result/runs."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="flc-bench-runtime-") as tmp:
        for model in args.models:
            source = model_source(model, args.width, args.size, Path(tmp))
            for rate in args.rates:
                for plan in PLANS:
                    name = f"{model}-{rate:g}-{plan}"
                    out = compile_plan(source, rate, plan, Path(tmp) / f"{name}.flc")
                    link = testbed.Link(rate, args.delay_ms)
                    s = testbed.testbed(
                        out,
                        result / "runs" / name,
                        link,
                        frames=args.frames,
                        slowdown=args.slowdown,
                    )
                    rows.append(
                        {
                            "model": model,
                            "rate_MBps": rate,
                            "plan": plan,
                            "measured_s": s["median_latency_s"],
                            "predicted_s": s["predicted_s"],
                            "ratio": s["ratio"],
                            "link_ratio": s["link_ratio_median"],
                        }
                    )
                    print(
                        f"{name}: measured {s['median_latency_s'] * 1e3:.1f} ms, predicted "
                        f"{s['predicted_s'] * 1e3:.1f} ms, ratio {s['ratio']:.3f}",
                        flush=True,
                    )
    return with_speedups(rows)


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _parser() -> ToolParser:
    p = ToolParser(prog="bench_runtime.py", description=__doc__.split("\n\n")[0])
    add_models_arg(p, ["alexnet", "squeezenet", "resnet18"])
    add_hidden_model_args(p)
    p.add_argument("--rates", dest="rates", type=rate_list, default=[1.1, 1.8, 3.0])
    p.add_argument("--frames", dest="frames", type=count(1), default=10)
    p.add_argument(
        "--slowdown", dest="slowdown", type=positive_float, default=testbed.TABLE_I_SLOWDOWN
    )
    p.add_argument("--delay-ms", dest="delay_ms", type=float, default=0.0)
    p.add_argument("-o", dest="out", required=True, help="directory for the CSV, PNG and runs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = _parser().parse_args(argv)

    def body() -> int:
        def write(tmp: Path) -> None:
            rows = bench(args, tmp)
            write_csv(tmp / "bench_runtime.csv", rows)
            plot(tmp / "bench_runtime.png", rows)
            keys = ["model", "rate_MBps", "plan", "measured_s", "predicted_s", "ratio"]
            keys += ["speedup_measured", "speedup_predicted"]
            table = [[_cell(r[k]) for k in keys] for r in rows]
            headers = ["model", "MB/s", "plan", "measured s", "predicted s", "ratio"]
            print(format_table([*headers, "speedup meas.", "speedup pred."], table))

        write_output(Path(args.out), write)
        print(f"wrote {args.out}/bench_runtime.csv, bench_runtime.png, runs/")
        return 0

    return run_main("bench_runtime.py", body)


if __name__ == "__main__":
    sys.exit(main())
