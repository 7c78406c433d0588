"""The `flcompile` command: parse options, run the pass, print the summary, map errors to exits."""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from flcompile import __version__
from flcompile.cli_args import GROUPS
from flcompile.command import OneLineParser, run_guarded
from flcompile.compile import CompileOptions, compile_model

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
  flcompile profile MODEL -o FILE       measure per-node costs on this machine
  flcompile profile --server HOST:PORT  measure the link to a running server

example: flcompile model.onnx --rate 1.8 -o out/"""


#: Subcommands, by the first argument: name -> the module whose main(argv) runs it. Any other
#: first argument is the model of the compile command (a file named like a subcommand: ./serve).
SUBCOMMANDS = {
    "serve": "flcompile.serve.cli",
    "run": "flcompile.device.cli",
    "profile": "flcompile.profile.cli",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: the model and OUT, then the groups of `flcompile.cli_args.GROUPS`."""
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
