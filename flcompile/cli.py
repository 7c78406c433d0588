"""The `flcompile` command: parse options, run the pass, print the summary, map errors to exits."""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from flcompile import __version__
from flcompile.arg_types import count, grid, non_negative, positive
from flcompile.command import OneLineParser, run_guarded
from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import (
    PAPER_DEVICE_FLOPS,
    PAPER_EDGE_FLOPS,
    ComputeModel,
    LinkModel,
    Shannon,
)
from flcompile.errors import UsageError
from flcompile.load import parse_input_shapes
from flcompile.search import SOLVER_CHOICES, SearchOptions

log = logging.getLogger("flcompile")


DESCRIPTION = """\
Split a CNN's inference between an IoT device and an edge server with fused
layers, the method of "Fused-Layer-based DNN model parallelism and partial
computation offloading" (GLOBECOM 2022; "the paper" below).

flcompile chooses a fused tensor F, a layer output at which the early layers
are cut into a grid of RxC tiles. Each tile becomes a path: its own copy of
the layers before F, from a slice of the input image. For every path it
chooses the cut (how many of the path's layers the device runs before it
sends their result to the edge) and the order the paths run in; the edge
joins the tiles back into F and runs the rest of the model. It writes
device.onnx, edge.onnx, plan.json and timeline.png to OUT, and checks in
onnxruntime that edge(device(x)) equals the original model."""

EPILOG = """\
words in the summary:
  local-only         everything runs on the device, nothing is sent
  full offload       the raw input is sent, everything runs on the edge
  NFL                no fused layers: the best single split point of the
                     untiled model (see --solver nfl)
  halo               the border pixels a tile needs from its neighbours,
                     since windows overlap; neighbouring paths compute them
                     twice
  redundancy         FLOPs of all paths / FLOPs of the untiled layers
  fluid lower bound  a latency no plan can beat under the cost model
                     (infinitely fine tiles, no halos); plan/bound is the
                     plan's latency divided by it
  predicted          the cost model's simulated latency; measured: the
                     models' onnxruntime times on this machine

exit codes: 0 ok, 2 bad usage or input, 3 verification failed,
4 internal error (a bug in flcompile)

run the split for real (see each one's --help):
  flcompile serve OUT --port P          the edge, on Triton (extra: serve)
  flcompile run OUT --server HOST:PORT  the device, streaming to it (extra: device)

example: flcompile model.onnx --rate 1.8 -o out/"""


#: Subcommands, by the first argument: name -> the module whose main(argv) runs it. Any other
#: first argument is the model of the compile command (a file named like a subcommand: ./serve).
SUBCOMMANDS = {"serve": "flcompile.serve.cli", "run": "flcompile.device.cli"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, in groups: model, link, compute, search, checks, output."""
    p = OneLineParser(
        prog="flcompile",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    p.add_argument(
        "model",
        help="an .onnx file, or a zoo model name (alexnet, squeezenet, "
        "yolov2, vgg16, resnet18, mobilenet_v2)",
    )
    p.add_argument("-o", "--output", dest="out", help="output directory (default: NAME.flc/)")
    p.add_argument("--version", action="version", version=f"flcompile {__version__}")
    m = p.add_argument_group("model input")
    m.add_argument(
        "--input-shape",
        dest="input_shape",
        action="append",
        metavar="[NAME:]NxCxHxW",
        help="fix dynamic input dims, e.g. 1x3x224x224 (repeatable)",
    )
    m.add_argument(
        "--input",
        dest="input_path",
        metavar="FILE.npy",
        help="input data for verification and timing (default: seeded random)",
    )
    m.add_argument(
        "--seed", dest="seed", type=count(0), default=0, metavar="N", help="random input seed"
    )
    link = p.add_argument_group(
        "link (give --rate, --paper, or radio parameters)",
        "With radio parameters the rate follows from Shannon's formula\n"
        "R = B·log2(1 + Q·G/σ²) bits/s (the paper's Eq. 2); unset ones take the\n"
        "values of the paper's Table I, its simulation settings.",
    )
    link.add_argument(
        "--rate",
        dest="rate",
        type=positive,
        metavar="MB/s",
        help="device→edge rate in MB/s (1 MB = 1e6 bytes)",
    )
    link.add_argument(
        "--paper",
        dest="paper",
        action="store_true",
        help="the paper's Table I: device speed f_end 2.23e8 FLOP/s, edge speed f_es "
        "4.32e9 FLOP/s, the rate from Shannon's formula with B 5 MHz, Q 0.1 W, G 1e-6, "
        "σ² 1e-9, and an unlimited edge (see --edge-concurrency)",
    )
    for flag, dest, unit, what in (
        ("--bandwidth-hz", "bandwidth_hz", "Hz", "B, the channel bandwidth"),
        ("--tx-power-w", "tx_power_w", "W", "Q, the device's transmit power"),
        ("--channel-gain", "channel_gain", "gain", "G, the channel gain"),
        ("--noise-w", "noise_w", "W", "σ², the noise power"),
    ):
        link.add_argument(
            flag,
            dest=dest,
            type=positive,
            metavar=unit,
            help=f"{what} (radio parameter)",
        )
    link.add_argument(
        "--latency",
        dest="latency_s",
        type=non_negative,
        default=0.0,
        metavar="S",
        help="fixed seconds per message (default 0)",
    )
    link.add_argument(
        "--return-rate",
        dest="return_rate",
        type=positive,
        metavar="MB/s",
        help="also count sending the results back at this rate",
    )
    c = p.add_argument_group("compute")
    c.add_argument(
        "--device-flops",
        dest="device_flops",
        type=positive,
        metavar="FLOP/s",
        help=f"device speed (default {PAPER_DEVICE_FLOPS:g})",
    )
    c.add_argument(
        "--edge-flops",
        dest="edge_flops",
        type=positive,
        metavar="FLOP/s",
        help=f"edge speed (default {PAPER_EDGE_FLOPS:g})",
    )
    c.add_argument(
        "--edge-concurrency",
        dest="edge_concurrency",
        type=count(0),
        metavar="K",
        help="how many paths the edge runs at once: 1 = serial, one at a time, as one "
        "onnxruntime session does (default); 0 = unlimited, every path at once at full "
        "speed (the paper's Eq. 4; the default with --paper); K = K at once",
    )
    c.add_argument(
        "--overhead-dev",
        dest="overhead_dev",
        type=non_negative,
        default=0.0,
        metavar="S",
        help="fixed device seconds per node (default 0)",
    )
    c.add_argument(
        "--overhead-edge",
        dest="overhead_edge",
        type=non_negative,
        default=0.0,
        metavar="S",
        help="fixed edge seconds per node (default 0)",
    )
    s = p.add_argument_group("search")
    s.add_argument(
        "--solver",
        dest="solver",
        choices=SOLVER_CHOICES,
        default="best",
        help="how the paths' order and cuts are chosen. mw: the paper's Minimizing "
        "Waiting heuristic; bf: brute force, the exact best order and cuts (small grids "
        "only); opt: flcompile's solver, equal to bf wherever bf runs and never worse "
        "than mw; nfl: no fused layers, the best single split point of the untiled "
        "model; best (default): mw on every F and grid, then opt on mw's 16 best and on "
        "every 2x2 grid. "
        "Whatever the solver, NFL is emitted when it is faster, unless F or the grid "
        "is fixed",
    )
    s.add_argument(
        "--grid",
        dest="grid",
        type=grid,
        metavar="RxC",
        help="fix the grid: R rows by C columns of tiles of F, so R·C paths",
    )
    s.add_argument(
        "--max-grid",
        dest="max_grid",
        type=grid,
        default=(8, 8),
        metavar="RxC",
        help="largest grid searched (default 8x8)",
    )
    s.add_argument(
        "--fuse-at",
        dest="fuse_at",
        metavar="TENSOR",
        help="fix the fused tensor F, by its tensor name in the model",
    )
    v = p.add_argument_group("verification and timing")
    v.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the onnxruntime equality check",
    )
    for flag, scale in (("rtol", ""), ("atol", ", scaled to each tensor's largest value")):
        v.add_argument(
            f"--{flag}",
            dest=flag,
            type=non_negative,
            default=1e-5,
            metavar="X",
            help=f"{flag} of the elementwise comparison (default 1e-5{scale})",
        )
    v.add_argument(
        "--runs",
        dest="runs",
        metavar="N",
        type=count(0),
        default=10,
        help="timed runs per model, median reported; 0 skips timing (default 10)",
    )
    v.add_argument(
        "--device-threads",
        dest="device_threads",
        metavar="N",
        type=count(1),
        default=1,
        help="onnxruntime threads for device.onnx (default 1)",
    )
    v.add_argument(
        "--edge-threads",
        dest="edge_threads",
        metavar="N",
        type=count(1),
        help="onnxruntime threads for edge.onnx (default: onnxruntime's)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--emit-stages",
        dest="emit_stages",
        action="store_true",
        help="also write one model per path and the fuse model, with stages.json, to "
        "OUT/stages/ (for serving paths as they become ready)",
    )
    o.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="count",
        default=0,
        help="more logging (-vv: debug)",
    )
    o.add_argument(
        "--emit-tiled",
        dest="emit_tiled",
        action="store_true",
        help="also write tiled.onnx, the whole rewritten model before the split (a third copy "
        "of the weights)",
    )
    o.add_argument("-q", "--quiet", dest="quiet", action="store_true", help="print errors only")
    o.add_argument(
        "--debug",
        dest="debug",
        action="store_true",
        help="tracebacks, and keep models that fail verification in OUT.failed/",
    )
    return p


def link_model(args: argparse.Namespace) -> LinkModel:
    """The link from --rate, --paper or the radio parameters."""
    radio = {
        k: getattr(args, k)
        for k in ("bandwidth_hz", "tx_power_w", "channel_gain", "noise_w")
        if getattr(args, k) is not None
    }
    if args.rate is not None and radio:
        raise UsageError("give either --rate or the radio parameters, not both")
    if args.rate is not None:
        return LinkModel(args.rate, args.latency_s, None, args.return_rate)
    if radio or args.paper:
        shannon = Shannon(**radio)
        return LinkModel(shannon.rate_MBps(), args.latency_s, shannon, args.return_rate)
    raise UsageError(
        "no link rate given",
        hint="pass --rate MB/s (e.g. --rate 1.8), --paper, or --bandwidth-hz and friends",
    )


def compute_model(args: argparse.Namespace) -> ComputeModel:
    """The compute model from the options (Table I's speeds unless overridden)."""
    concurrency = args.edge_concurrency
    if concurrency is None:
        concurrency = 0 if args.paper else 1
    return ComputeModel(
        device_flops=args.device_flops or PAPER_DEVICE_FLOPS,
        edge_flops=args.edge_flops or PAPER_EDGE_FLOPS,
        overhead_dev_s=args.overhead_dev,
        overhead_edge_s=args.overhead_edge,
        edge_concurrency=concurrency,
    )


def options_from(args: argparse.Namespace) -> CompileOptions:
    """CompileOptions from parsed arguments."""
    return CompileOptions(
        compute=compute_model(args),
        link=link_model(args),
        search=SearchOptions(
            solver=args.solver,
            grid=args.grid,
            fuse_at=args.fuse_at,
            max_grid=args.max_grid,
            progress=not args.quiet and sys.stderr.isatty(),
        ),
        input_shapes=parse_input_shapes(args.input_shape),
        verify=args.verify,
        seed=args.seed,
        input_path=args.input_path,
        rtol=args.rtol,
        atol=args.atol,
        runs=args.runs,
        device_threads=args.device_threads,
        edge_threads=args.edge_threads,
        emit_stages=args.emit_stages,
        emit_tiled=args.emit_tiled,
        debug=args.debug,
        progress=not args.quiet and sys.stderr.isatty(),
    )


def default_out(model: str) -> str:
    """NAME.flc beside the working directory, from the model's file stem or zoo name."""
    stem = re.sub(r"\.onnx$", "", model.rstrip("/").split("/")[-1]) or "model"
    return f"{stem}.flc"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 2 bad input, 3 mismatch, 4 bug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    return run_guarded(
        lambda: _compile(argv),
        debug="--debug" in argv,
        interrupted="interrupted; nothing was written",
    )


def _compile(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    level = (
        logging.ERROR
        if args.quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or default_out(args.model)
    result = compile_model(args.model, out, options_from(args))
    if not args.quiet:
        from flcompile.summary import format_summary

        print(format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
