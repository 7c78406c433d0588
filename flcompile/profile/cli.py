"""`flcompile profile MODEL --threads N -o FILE`: measure per-node costs on this machine."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from flcompile.arg_types import count, grid, positive
from flcompile.command import OneLineParser, run_guarded
from flcompile.errors import UsageError
from flcompile.profile.link_cli import add_link_args, profile_link

DESCRIPTION = """\
Measure what each node of MODEL, and of the stage models of its tiled rewrites,
costs on this machine with onnxruntime's profiler, fit seconds = a + b*FLOPs +
c*bytes per node kind (op type and kernel, e.g. "Conv 3x3") and per op type,
and what a stage run costs beyond its nodes (run overhead = a + b*nodes), and
write the laws as a JSON profile. Run it on the device and on the edge
server; plan with: flcompile MODEL --device-profile D --edge-profile E.
The profile's accuracy (each tiled grid's stage models predicted by the laws
fitted on the others: median and worst relative error) is printed and stored
in it.

With --server HOST:PORT instead of MODEL it measures the link to a running
`flcompile serve`: it times requests of several payload sizes to the server's
probe model, fits seconds = latency + bytes / rate to each size's median, and
writes a link profile; plan with: flcompile MODEL --link-profile FILE."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `flcompile profile`."""
    p = OneLineParser(
        prog="flcompile profile",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="an .onnx file or a zoo model name")
    p.add_argument(
        "-o",
        "--output",
        dest="out",
        help="the profile to write (default device-profile.json; link-profile.json with --server)",
    )
    p.add_argument("--threads", type=count(1), default=1, help="onnxruntime intra-op threads")
    p.add_argument(
        "--grids",
        type=grid,
        nargs="+",
        default=[(1, 2), (2, 2), (3, 3)],
        help="tiled grids measured besides the model itself (default: 1x2 2x2 3x3)",
    )
    p.add_argument("--runs", type=count(1), default=7, help="timed runs per model (default 7)")
    p.add_argument(
        "--repeats",
        type=count(1),
        default=3,
        help="sessions per model, each node's fastest run kept (default 3)",
    )
    p.add_argument(
        "--slowdown",
        type=positive,
        default=1.0,
        metavar="K",
        help="price a device K times slower than this machine: every measured time times K "
        "(default 1; for an emulated device such as the testbed's, whose CPU quota lets a "
        "node run at full speed between stalls)",
    )
    add_link_args(p)
    p.add_argument("--debug", action="store_true", help="tracebacks on errors")
    return p


def main(argv: Sequence[str]) -> int:
    """Run `flcompile profile`; returns the exit code."""
    argv = list(argv)
    return run_guarded(
        lambda: _profile(argv), debug="--debug" in argv, interrupted="interrupted; nothing written"
    )


def _profile(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (args.model is None) == (args.server is None):
        raise UsageError(
            "give MODEL (per-node costs) or --server HOST:PORT (the link), one of them",
            hint="see flcompile profile --help",
        )
    if args.server is not None:
        return profile_link(args)
    from flcompile.compile import analyse
    from flcompile.costs.run_overhead import fit_run_overhead
    from flcompile.device.owned_files import check_writable, write_file
    from flcompile.load import load_model
    from flcompile.profile.accuracy import held_out_accuracy
    from flcompile.profile.law import fit_group, fit_laws, size_table
    from flcompile.profile.profile_json import profile_dict
    from flcompile.profile.variants import measure, run_points

    out = check_writable(args.out or "device-profile.json", "json", "-o")
    loaded = load_model(args.model)
    analysis = analyse(loaded)
    grids = ((1, 1), *dict.fromkeys(g for g in args.grids if g != (1, 1)))
    variants = measure(analysis, args.threads, grids, args.runs, args.repeats, args.slowdown)
    everything = [s for v in variants for s in v.samples]
    laws = fit_laws(everything)
    accuracy = held_out_accuracy(variants)
    overall = fit_group(everything)
    sizes = size_table(everything)
    run = fit_run_overhead(run_points(variants))
    profile = profile_dict(args.model, args.threads, laws, overall, accuracy, sizes, run)
    if args.slowdown != 1.0:
        profile["slowdown"] = args.slowdown
    text = json.dumps(profile, indent=2) + "\n"
    write_file(out, "json", "-o", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    print(_summary(out, variants, laws, accuracy, run))
    return 0


def _summary(out: Path, variants, laws, accuracy, run) -> str:
    measured = ", ".join(f"{v.grid[0]}x{v.grid[1]}" for v in variants)
    line = (
        f"profile: {len(laws)} laws from grids {measured}; run overhead "
        f"{run.s_per_run * 1e3:.3g} ms + {run.s_per_node * 1e3:.3g} ms per node; wrote {out}"
    )
    if accuracy.median() is None:
        return line + "\nheld-out accuracy: no tiled stage measured"
    per_grid = ", ".join(
        f"{g} {accuracy.median(grid=g):.1%}/{accuracy.worst(grid=g):.1%}" for g in accuracy.grids
    )
    return (
        f"{line}\nheld-out accuracy (stage models, median/worst): {accuracy.median():.1%}/"
        f"{accuracy.worst():.1%} ({per_grid}); one overall law: "
        f"{accuracy.median('overall'):.1%}/{accuracy.worst('overall'):.1%}"
    )
