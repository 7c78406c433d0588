"""The `flcompile` command: parse options, run the pass, print the summary, map errors to exits."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from flcompile import __version__
from flcompile.arg_types import count, grid, non_negative, positive
from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import (
    PAPER_DEVICE_FLOPS,
    PAPER_EDGE_FLOPS,
    LinkModel,
    Shannon,
    compute_model,
)
from flcompile.errors import FlCompileError, InternalError, UsageError
from flcompile.load import parse_input_shapes
from flcompile.search import SOLVER_CHOICES, SearchOptions

log = logging.getLogger("flcompile")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint="see flcompile --help")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, in groups: model, link, compute, search, checks, output."""
    p = _Parser(
        prog="flcompile",
        description="Tile a CNN's early layers into fused-layer paths and split them between "
        "an IoT device and an edge server: writes device.onnx, edge.onnx, tiled.onnx, "
        "plan.json and timeline.png.",
        epilog="Example: flcompile model.onnx --rate 1.8 -o out/",
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
    link = p.add_argument_group("link (give --rate, --paper, or radio parameters)")
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
        help="the paper's Table I: f_end 2.23e8, f_es 4.32e9, B 5 MHz, Q 0.1 W, "
        "G 1e-6, σ² 1e-9, unlimited edge concurrency",
    )
    for flag, dest, unit in (
        ("--bandwidth-hz", "bandwidth_hz", "Hz"),
        ("--tx-power-w", "tx_power_w", "W"),
        ("--channel-gain", "channel_gain", "gain"),
        ("--noise-w", "noise_w", "W"),
    ):
        link.add_argument(
            flag,
            dest=dest,
            type=positive,
            metavar=unit,
            help="rate by Shannon's formula (others default to Table I)",
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
        help="1 = serial edge (default), 0 = unlimited (paper's Eq. 4), K = K at once",
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
        help="best (default: opt, MW and NFL), opt, mw, bf or nfl",
    )
    s.add_argument("--grid", dest="grid", type=grid, metavar="RxC", help="fix the grid")
    s.add_argument(
        "--max-grid",
        dest="max_grid",
        type=grid,
        default=(8, 8),
        metavar="RxC",
        help="largest grid searched (default 8x8)",
    )
    s.add_argument("--fuse-at", dest="fuse_at", metavar="TENSOR", help="fix the fused tensor F")
    v = p.add_argument_group("verification and timing")
    v.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the onnxruntime equality check",
    )
    for flag in ("rtol", "atol"):
        v.add_argument(
            f"--{flag}",
            dest=flag,
            type=non_negative,
            default=1e-5,
            metavar="X",
            help=f"{flag} of the elementwise comparison (default 1e-5)",
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
        help="also write per-path stage models to OUT/stages/",
    )
    o.add_argument("-v", "--verbose", dest="verbose", action="count", default=0)
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


def options_from(args: argparse.Namespace) -> CompileOptions:
    """CompileOptions from parsed arguments."""
    return CompileOptions(
        compute=compute_model(
            args.paper,
            args.edge_concurrency,
            device_flops=args.device_flops,
            edge_flops=args.edge_flops,
            overhead_dev_s=args.overhead_dev,
            overhead_edge_s=args.overhead_edge,
        ),
        link=link_model(args),
        search=SearchOptions(
            solver=args.solver,
            grid=args.grid,
            fuse_at=args.fuse_at,
            max_grid=args.max_grid,
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
        debug=args.debug,
        progress=not args.quiet and sys.stderr.isatty(),
    )


def default_out(model: str) -> str:
    """NAME.flc beside the working directory, from the model's file stem or zoo name."""
    stem = re.sub(r"\.onnx$", "", model.rstrip("/").split("/")[-1]) or "model"
    return f"{stem}.flc"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (0 ok, 2 bad input, 3 mismatch, 4 bug)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
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
    except FlCompileError as e:
        if debug:
            raise
        print(f"flcompile: error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("flcompile: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: one line, exit 4, traceback only with --debug
        if debug:
            raise
        error = InternalError(f"{type(e).__name__}: {e}")
        print(f"flcompile: error: {error.one_line()}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
