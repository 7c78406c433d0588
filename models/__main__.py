"""Command line: `python -m flcompile.models NAME -o PATH` builds a zoo model and saves it."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import onnx

from flcompile.errors import FlCompileError

from .zoo import NAMES, build


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flcompile.models",
        description="Build a zoo CNN in plain ONNX with seeded He-normal weights.",
    )
    parser.add_argument("name", help=f"the model: {', '.join(NAMES)}")
    parser.add_argument("-o", "--output", dest="output", required=True, help="the .onnx to write")
    parser.add_argument(
        "--width", dest="width", type=float, default=1.0, help="channel multiplier (default 1)"
    )
    parser.add_argument(
        "--size", dest="size", type=int, default=None, help="input H = W (default per model)"
    )
    parser.add_argument("--batch", dest="batch", type=int, default=1, help="batch (default 1)")
    parser.add_argument("--seed", dest="seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument("--opset", dest="opset", type=int, default=17, help="opset (default 17)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments without the program name; None reads sys.argv.

    Returns:
        The exit code: 0 on success, 2 for a bad name or option or an unwritable path.
    """
    args = _parser().parse_args(argv)
    try:
        model = build(
            args.name,
            width=args.width,
            size=args.size,
            batch=args.batch,
            seed=args.seed,
            opset=args.opset,
        )
        onnx.save_model(model, args.output)
    except FlCompileError as e:
        print(f"error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"error: cannot write '{args.output}': {e.strerror or e}", file=sys.stderr)
        return 2
    params = sum(math.prod(t.dims) for t in model.graph.initializer)
    shape = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    print(
        f"wrote {args.output}: {args.name} ({len(model.graph.node)} nodes, {params:,} parameters, "
        f"output {shape})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
