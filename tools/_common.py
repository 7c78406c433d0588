"""What the tools in tools/ share: argument parsing, the edge model's label, model loading
and number formatting.

The tools are scripts (`python tools/NAME.py`); Python puts tools/ on sys.path, so they import
this module as `_common`. Nothing in flcompile imports the tools.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import onnx

from flcompile import models
from flcompile.arg_types import count, grid
from flcompile.arg_types import positive as positive_float
from flcompile.atomic_output import atomic_directory
from flcompile.compile import Analysis, analyse
from flcompile.costs import (
    ComputeModel,
    edge_model_words,
)
from flcompile.costs import compute_model as compute_model  # the tools' and flcompile's one
from flcompile.errors import FlCompileError, user_path_errors
from flcompile.load import load_model
from flcompile.search import DEFAULT_INTERMEDIATE, DEFAULT_REUSE, DEFAULT_TILES, TILES_CHOICES


class ToolParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def run_main(name: str, body: Callable[[], int]) -> int:
    """Run a tool's body; a flcompile user error becomes one line and its exit code."""
    try:
        return body()
    except FlCompileError as e:
        print(f"{name}: error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


def write_output(out: Path, write: Callable[[Path], None]) -> None:
    """Write a tool's files into the directory OUT all at once, by flcompile's rules for -o:
    only a missing or empty OUT, or one a tool or flcompile wrote, is replaced."""
    with atomic_directory(out) as tmp, user_path_errors(out, "write the output"):
        write(tmp)


# --- argument types -------------------------------------------------------------------------


def model_list(text: str) -> list[str]:
    """A comma list of zoo model names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in models.NAMES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or repr(text)}; "
            f"choose from {','.join(models.NAMES)}"
        )
    return names


def grid_list(text: str) -> list[tuple[int, int]]:
    """A comma list of grids, e.g. 2x2,4x4,8x8."""
    return [grid(g) for g in text.split(",") if g.strip()] or [grid(text)]


def rate_list(text: str) -> list[float]:
    """Rates in MB/s: START:STOP:STEP (STOP included) or a comma list."""
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise argparse.ArgumentTypeError(
                    f"'{text}': need START <= STOP and STEP > 0, e.g. 1.1:3.0:0.1"
                )
            n = round((stop - start) / step + 1e-9)
            rates = [round(start + i * step, 10) for i in range(n + 1)]
        else:
            rates = [float(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not START:STOP:STEP or a comma list of rates"
        ) from None
    if not rates or any(not (r > 0 and r != float("inf")) for r in rates):
        raise argparse.ArgumentTypeError(f"'{text}': rates must be positive numbers")
    return rates


PAPER_MODELS = ("alexnet", "squeezenet", "yolov2")


def add_models_arg(p: argparse.ArgumentParser, default: Sequence[str]) -> None:
    """--models: a comma list of zoo models."""
    p.add_argument(
        "--models",
        dest="models",
        type=model_list,
        default=list(default),
        help=f"comma list of zoo models (default {','.join(default)})",
    )


def add_cost_args(p: argparse.ArgumentParser) -> None:
    """--paper and --edge-concurrency, shared by the tools that score plans."""
    p.add_argument(
        "--paper",
        dest="paper",
        action="store_true",
        help="the paper's Table I speeds with an unlimited edge (Eq. 4, edge_concurrency 0); "
        "the link rate still comes from the rate option",
    )
    p.add_argument(
        "--edge-concurrency",
        dest="edge_concurrency",
        type=count(0),
        metavar="K",
        help="1 = serial edge (default), 0 = unlimited (paper's Eq. 4), K = K at once",
    )


def add_tiles_arg(p: argparse.ArgumentParser) -> None:
    """--tiles: equal splits of F only, or also the boundary search (flcompile's --tiles)."""
    p.add_argument(
        "--tiles",
        dest="tiles",
        choices=TILES_CHOICES,
        default=DEFAULT_TILES,
        help="uniform: equal splits of F only; free: also search the row and column "
        f"boundaries, as flcompile --tiles free (default {DEFAULT_TILES}, as flcompile)",
    )


def add_rates_arg(p: argparse.ArgumentParser, default: str = "1.1:3.0:0.1") -> None:
    """--rates: link rates in MB/s, START:STOP:STEP or a comma list (`rate_list`)."""
    p.add_argument(
        "--rates",
        dest="rates",
        type=rate_list,
        default=rate_list(default),
        metavar="START:STOP:STEP|R1,R2,...",
        help=f"link rates in MB/s, STOP included (default {default})",
    )


def add_max_grid_arg(p: argparse.ArgumentParser, what: str) -> None:
    """--max-grid RxC, default 8x8; `what` says what it limits, for the help."""
    p.add_argument(
        "--max-grid",
        dest="max_grid",
        type=grid,
        default=(8, 8),
        metavar="RxC",
        help=f"{what} (default 8x8)",
    )


def add_reuse_arg(p: argparse.ArgumentParser) -> None:
    """--reuse/--no-reuse and --intermediate-reuse/--no-intermediate-reuse, as flcompile's
    flags (`reuse_of` and `intermediate_of` resolve them)."""
    p.add_argument(
        "--reuse",
        dest="reuse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="edge-side reuse (each path sends only what the edge does not hold); default "
        "as flcompile's: on unless --paper",
    )
    p.add_argument(
        "--intermediate-reuse",
        dest="intermediate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="under reuse, the edge also keeps what it computed (scan plans); default as "
        "flcompile's: on under reuse",
    )


def reuse_of(args: argparse.Namespace) -> bool:
    """--reuse/--no-reuse, else flcompile's default (off under --paper)."""
    return args.reuse if args.reuse is not None else DEFAULT_REUSE and not args.paper


def intermediate_of(args: argparse.Namespace) -> bool:
    """--intermediate-reuse/--no-intermediate-reuse, else flcompile's default; only under
    reuse (`reuse_of`)."""
    asked = getattr(args, "intermediate", None)
    return reuse_of(args) and (DEFAULT_INTERMEDIATE if asked is None else asked)


def add_hidden_model_args(p: argparse.ArgumentParser) -> None:
    """--width and --size: small zoo variants for fast tests (not shown in --help)."""
    p.add_argument("--width", dest="width", type=positive_float, help=argparse.SUPPRESS)
    p.add_argument("--size", dest="size", type=count(1), help=argparse.SUPPRESS)


# --- the edge model ----------------------------------------------------------------------------


def edge_label(compute: ComputeModel) -> str:
    """Which edge model produced a number (docs/design.md §4: always say so), e.g. "edge model:
    serial (edge_concurrency 1)"; `compute_model` (from flcompile.costs) builds the model."""
    k = compute.edge_concurrency
    return f"edge model: {edge_model_words(k)} (edge_concurrency {k})"


# --- models ---------------------------------------------------------------------------------


def model_source(name: str, width: float | None, size: int | None, tmp: Path) -> str:
    """The zoo name itself, or (for --width/--size) the path of a small variant written to tmp."""
    if width is None and size is None:
        return name
    model = models.build(name, width=width or 1.0, size=size)
    path = tmp / f"{name}.onnx"
    onnx.save(model, str(path))
    return str(path)


def load_analysis(name: str, width: float | None = None, size: int | None = None) -> Analysis:
    """Load and analyse a zoo model (or its small variant) once."""
    with tempfile.TemporaryDirectory(prefix="fltools-") as tmp:
        return analyse(load_model(model_source(name, width, size, Path(tmp))))


# --- numbers and tables ---------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def grid_text(g: tuple[int, int] | None) -> str:
    """2x2, or - for none."""
    return "-" if g is None else f"{g[0]}x{g[1]}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], markdown=False) -> str:
    """A plain (aligned) or markdown table of already formatted cells."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(lines)

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
