"""Measured against predicted latency: FL and NFL plans of zoo models through the testbed.

For each model it first measures the costs, once: `flcompile profile` of the device (this
machine, 1 thread, `--slowdown` how many times slower the whole model runs in a cgroup
--slowdown times slower, as the testbed's device runs) and of the edge (this machine, 1 thread, as
`flcompile serve` runs). For each rate it measures the emulated link (`flcompile profile
--server` through the tc-shaped namespace, as the device's network stack runs: outside
the cgroup with the default `--throttle compute`, inside it with `process`; the link's rate
and latency, and the device's own work per message), compiles the FL plan (the default
solver) and the NFL plan (`--solver nfl`) with those three profiles (answers returning at
the link's rate), runs each through tools/testbed.py and records the measured median
end-to-end latency, the plan's own prediction, the measured and predicted FL-over-NFL
speedups, and per run when the device was done, the last message arrived and the edge
was done, measured and predicted. Targets (not enforced here): measured within ±15 %
of predicted, measured speedup within 10 % of predicted. `--table-costs` plans with
Table I speeds and the nominal rate instead, as before profiles existed.

Writes DIR/bench_runtime.csv (one row per model × rate × plan), DIR/bench_runtime.png
(measured against predicted, with the ±15 % band), DIR/runs/ (each run's reports and plan.json) and
DIR/profiles/ (the profiles used; `--profiles DIR2` reuses the device and edge profiles
found in DIR2 and measures the missing ones there).

Rerun (the whole matrix; a quick check: --models alexnet --rates 1.8 --frames 10):
    python tools/bench_runtime.py --models alexnet,squeezenet,resnet18 --rates 1.1,1.8,3.0 \\
        --frames 10 -o /tmp/bench_runtime
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
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
from flcompile.deploy.plan_index import load_index
from flcompile.errors import BadInputError
from flcompile.plan_json import plan_timeline

PLANS = {"FL": [], "NFL": ["--solver", "nfl"]}
#: When a frame reaches each stage (median over the frames, from its start): the device has
#: handed its last message over, the last message has reached the edge, the edge is done.
MARKS = ("device_done", "last_arrival", "edge_done")
COLUMNS = [
    "model",
    "rate_MBps",
    "plan",
    "emitted",
    "link_rate_MBps",
    "link_latency_s",
    "measured_s",
    "predicted_s",
    "ratio",
    "link_ratio",
    "speedup_measured",
    "speedup_predicted",
    *(f"{mark}_{kind}_s" for mark in MARKS for kind in ("measured", "predicted")),
]
ACCURACY_BAND = 0.15


def compile_plan(source: str, costs: Sequence[str], plan: str, out: Path) -> Path:
    """Compile `source` with the cost options `costs` into `out` as the FL or NFL plan,
    with per-path stages."""
    argv = [source, *costs, *PLANS[plan], "--emit-stages", "--runs", "0", "-q"]
    if cli.main([*argv, "-o", str(out)]) != 0:
        raise BadInputError(f"compiling {source} ({plan}) with {' '.join(costs)} failed")
    return out


#: Times the whole model in onnxruntime (1 thread) for at least {min_s} s after a warm-up
#: run and prints the mean seconds per run.
TIME_MODEL = """
import time
from flcompile.load import load_model
from flcompile.verify import make_feeds, open_session
model = load_model({source!r}).model
feeds = make_feeds(model)
with open_session(model, threads=1) as session:
    session.run(None, feeds)
    start, runs = time.perf_counter(), 0
    while runs < 3 or time.perf_counter() - start < {min_s}:
        session.run(None, feeds)
        runs += 1
    print((time.perf_counter() - start) / runs)
"""


def device_slowdown(source: str, slowdown: float) -> float:
    """How many times slower the testbed's device runs `source` than this machine does.

    The mean time of a run of the whole model inside a cgroup `slowdown` times slower
    (testbed.run_throttled) over the same unthrottled: the quota's share of the CPU, and
    what it costs on top (after each stall the caches are cold), on the model itself.
    """

    def mean_run_s(throttled: bool) -> float:
        code = TIME_MODEL.format(source=source, min_s=3.0 if throttled else 1.0)
        argv = [sys.executable, "-c", code]
        if throttled:
            text = testbed.run_throttled(argv, slowdown)
        else:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BadInputError(f"timing {source} failed: {done.stderr.strip()[-500:]}")
            text = done.stdout
        return float(text.strip().splitlines()[-1])

    return mean_run_s(True) / mean_run_s(False)


def measured_profiles(source: str, name: str, folder: Path, slowdown: float) -> dict[str, Path]:
    """The device's and the edge's profiles of `source`, measured unless `folder` has them.

    Both are measured on this machine at 1 thread, as `flcompile run` and `flcompile serve`
    run; the device's with `--slowdown` its measured slowdown in its cgroup (`device_slowdown`).
    Profiled inside the cgroup, a node would keep its fastest run, and the quota lets a
    process run a few ms at full speed between stalls: most nodes' fastest runs there are
    their unthrottled times.
    """
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for side in ("device", "edge"):
        path = folder / f"{name}-{side}.json"
        found[side] = path
        if path.exists():
            print(f"{name}: reusing {path}", flush=True)
            continue
        argv = [sys.executable, "-m", "flcompile", "profile", source, "--threads", "1"]
        argv += ["-o", str(path)]
        if side == "device":
            share = device_slowdown(source, slowdown)
            print(f"{name} device: {share:.2f} times slower in its cgroup", flush=True)
            argv += ["--slowdown", f"{share:.4g}"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BadInputError(f"profiling the {side} failed: {done.stderr.strip()[-500:]}")
        print(f"{name} {side}: {done.stdout.strip().splitlines()[-1]}", flush=True)
    return found


def cost_options(profiles: dict[str, Path], link_profile: Path, rate_MBps: float) -> list[str]:
    """The compile options that plan with the measured costs.

    The answer crosses the same shaped loopback as the request (tc shapes every packet
    on it), so the plan returns the outputs at the link's measured rate (`--return-rate`).
    """
    return [
        "--device-profile",
        str(profiles["device"]),
        "--edge-profile",
        str(profiles["edge"]),
        "--link-profile",
        str(link_profile),
        "--return-rate",
        f"{rate_MBps:.6g}",
    ]


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


def stage_marks(report: dict, plan: dict) -> dict[str, float]:
    """Measured and predicted `MARKS` of a run: where its latency goes, term by term.

    Measured (median over the answered frames): the last `handed` of a send, the last
    `received` on the edge, the end of the fuse (else of the last edge stage). Predicted
    (the plan's own timeline): the device's last end (its send work included), the last
    link end, and the finish less the return.
    """
    frames = [f for f in report["frames"] if f["ok"]]
    measured: dict[str, list[float]] = {mark: [] for mark in MARKS}
    for frame in frames:
        events = frame["events"]
        ends = [e["end"] for e in events if e["kind"] in ("edge", "fuse")]
        handed = [e["handed"] for e in events if e["kind"] == "send"]
        received = [e["received"] for e in events if e["kind"] == "edge"]
        fuse = [e["end"] for e in events if e["kind"] == "fuse"]
        measured["device_done"].append(max(handed, default=math.nan))
        measured["last_arrival"].append(max(received, default=math.nan))
        measured["edge_done"].append(fuse[0] if fuse else max(ends, default=math.nan))
    timeline = plan_timeline(plan)
    predicted = {
        "device_done": max(p.device_end for p in timeline.paths),
        "last_arrival": max(p.link_end for p in timeline.paths),
        "edge_done": timeline.finish - plan["return_s"],
    }
    marks = {}
    for mark in MARKS:
        marks[f"{mark}_measured_s"] = statistics.median(measured[mark]) if frames else None
        marks[f"{mark}_predicted_s"] = predicted[mark]
    return marks


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


def bench(args, result: Path, failures: list[str]) -> list[dict]:
    """Every model × rate × plan through the testbed; each run's files go to result/runs.

    A run (or a rate's link probe) that fails is said in one line and added to `failures`;
    the others go on, so a long matrix keeps what it measured.
    """
    rows = []
    profiles_dir = Path(args.profiles) if args.profiles else result / "profiles"
    with tempfile.TemporaryDirectory(prefix="flc-bench-runtime-") as tmp:
        for model in args.models:
            source = model_source(model, args.width, args.size, Path(tmp))
            if not args.table_costs:
                profiles = measured_profiles(source, model, profiles_dir, args.slowdown)
            for rate in args.rates:
                link = testbed.Link(rate, args.delay_ms)
                costs = ["--rate", f"{rate:g}"]
                if not args.table_costs:
                    link_file = result / "profiles" / f"link-{rate:g}.json"
                    measured = _guarded(
                        failures, f"{model}-{rate:g} link", _probe, args, link, link_file
                    )
                    if not measured:
                        continue
                    costs = cost_options(profiles, link_file, measured["rate_MBps"])
                for plan in PLANS:
                    name = f"{model}-{rate:g}-{plan}"
                    run = (args, result, source, model, link, plan, costs, Path(tmp))
                    row = _guarded(failures, name, _run, *run)
                    rows += [row] if row else []
    return with_speedups(rows)


def _guarded(failures: list[str], name: str, step, *step_args):
    """`step(*step_args)`, or None after saying in one line why it failed."""
    try:
        return step(*step_args)
    except BadInputError as e:
        failures.append(name)
        print(f"{name}: failed: {e.one_line()}", flush=True)
        return None


def _probe(args, link: testbed.Link, link_file: Path) -> dict:
    measured = testbed.probe_link(
        link,
        link_file,
        slowdown=args.slowdown,
        probe_options=["--rounds", str(args.probe_rounds)],
        throttle=args.throttle,
    )["link"]
    device = json.loads(link_file.read_text()).get("device") or {}
    print(
        f"link at {link.rate_MBps:g} MB/s: measured {measured['rate_MBps']:.3f} MB/s, "
        f"{measured['latency_s'] * 1e3:.2f} ms per message; the device's own work "
        f"{device.get('s_per_message', 0.0) * 1e3:.2f} ms per message + "
        f"{device.get('s_per_byte', 0.0) * 1e9:.2f} ms per MB",
        flush=True,
    )
    return measured


def _run(args, result: Path, source, model, link, plan, costs, tmp: Path) -> dict:
    name = f"{model}-{link.rate_MBps:g}-{plan}"
    out = compile_plan(source, costs, plan, tmp / f"{name}.flc")
    s = testbed.testbed(
        out,
        result / "runs" / name,
        link,
        frames=args.frames,
        slowdown=args.slowdown,
        plan_link=not args.table_costs,
        throttle=args.throttle,
    )
    compiled = load_index(out).plan
    fused = compiled["fused"]
    (result / "runs" / name / "plan.json").write_text(json.dumps(compiled, indent=1) + "\n")
    marks = stage_marks(json.loads((result / "runs" / name / testbed.REPORT).read_text()), compiled)
    print(
        f"{name}: measured {s['median_latency_s'] * 1e3:.1f} ms, predicted "
        f"{s['predicted_s'] * 1e3:.1f} ms, ratio {s['ratio']:.3f}",
        flush=True,
    )
    return {
        "model": model,
        "rate_MBps": link.rate_MBps,
        "plan": plan,
        "emitted": "NFL" if fused is None else f"FL {fused['grid'][0]}x{fused['grid'][1]}",
        "link_rate_MBps": compiled["link"]["rate_MBps"],
        "link_latency_s": compiled["link"]["latency_s"],
        "measured_s": s["median_latency_s"],
        "predicted_s": s["predicted_s"],
        "ratio": s["ratio"],
        "link_ratio": s["link_ratio_median"],
        **marks,
    }


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
    testbed.add_throttle_arg(p)
    p.add_argument(
        "--profiles",
        dest="profiles",
        help="reuse the device and edge profiles here (MODEL-device.json, MODEL-edge.json), "
        "measuring and writing the missing ones (default: fresh ones in OUT/profiles)",
    )
    p.add_argument(
        "--probe-rounds",
        dest="probe_rounds",
        type=count(2),
        default=7,
        help="the link probe's requests per size (flcompile profile --server --rounds)",
    )
    p.add_argument(
        "--table-costs",
        dest="table_costs",
        action="store_true",
        help="plan with Table I speeds and the nominal rate, not measured profiles",
    )
    p.add_argument("-o", dest="out", required=True, help="directory for the CSV, PNG and runs")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    args = _parser().parse_args(argv)

    def body() -> int:
        failures: list[str] = []

        def write(tmp: Path) -> None:
            rows = bench(args, tmp, failures)
            write_csv(tmp / "bench_runtime.csv", rows)
            if rows:
                plot(tmp / "bench_runtime.png", rows)
            keys = ["model", "rate_MBps", "plan", "emitted", "measured_s", "predicted_s"]
            keys += ["ratio", "speedup_measured", "speedup_predicted"]
            table = [[_cell(r[k]) for k in keys] for r in rows]
            headers = ["model", "MB/s", "plan", "emitted", "measured s", "predicted s", "ratio"]
            print(format_table([*headers, "speedup meas.", "speedup pred."], table))

        write_output(Path(args.out), write)
        print(f"wrote {args.out}/bench_runtime.csv, bench_runtime.png, runs/")
        if failures:
            print(f"{len(failures)} step(s) failed: {', '.join(failures)}")
        return 1 if failures else 0

    return run_main("bench_runtime.py", body)


if __name__ == "__main__":
    sys.exit(main())
