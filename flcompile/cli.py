"""The `flcompile` command: parse options, run the pass, print the summary, map errors to exits."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from flcompile import __version__
from flcompile.cli_args import GROUPS
from flcompile.compile import CompileOptions, compile_model
from flcompile.errors import FlCompileError, InternalError, UsageError

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

example: flcompile model.onnx --rate 1.8 -o out/"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint="see flcompile --help")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: the model and OUT, then the groups of `flcompile.cli_args.GROUPS`."""
    p = _Parser(
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
    for group in GROUPS:
        group.add_to(p)
    return p


def options_from(args: argparse.Namespace) -> CompileOptions:
    """CompileOptions from parsed arguments, each group parsing its own options.

    Raises:
        UsageError: the options contradict each other or miss the link rate.
    """
    return CompileOptions(**{k: v for group in GROUPS for k, v in group.parse(args).items()})


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
