"""The `flcompile` command's argument groups: each adds its options and parses its options back.

As in Polygraphy's CLI, each group is a small class with `add_to(parser)`, which adds one
titled group of options, and `parse(args)`, which turns those options into the fields of
`CompileOptions` it owns. `flcompile.cli.build_parser` composes them in `GROUPS` order.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Protocol

from flcompile.arg_types import count, grid, non_negative, positive
from flcompile.costs import PAPER_DEVICE_FLOPS, PAPER_EDGE_FLOPS, LinkModel, Shannon, compute_model
from flcompile.costs.profiled import profiled
from flcompile.costs.wire import DEFAULT_SEND_DTYPE, SEND_DTYPES
from flcompile.errors import UsageError
from flcompile.load import parse_input_shapes
from flcompile.search import (
    DEFAULT_INTERMEDIATE,
    DEFAULT_REUSE,
    DEFAULT_TILES,
    SOLVER_CHOICES,
    TILES_CHOICES,
    SearchOptions,
)

RADIO = ("bandwidth_hz", "tx_power_w", "channel_gain", "noise_w")


class ArgGroup(Protocol):
    """One group of options: adds them to a parser, and parses them into CompileOptions fields."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add this group's options to `parser`."""

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """The CompileOptions fields this group owns, from parsed arguments."""


class ModelArgs:
    """The model's inputs: fixed shapes, input data and the random input's seed."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the "model input" group to `parser`."""
        m = parser.add_argument_group("model input")
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

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """input_shapes, input_path and seed.

        Raises:
            UsageError: an --input-shape is malformed.
        """
        return {
            "input_shapes": parse_input_shapes(args.input_shape),
            "input_path": args.input_path,
            "seed": args.seed,
        }


class LinkArgs:
    """The device→edge link: --rate, --paper, Shannon's radio parameters or a link profile."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the "link" group to `parser`."""
        link = parser.add_argument_group(
            "link (give --rate, --link-profile, --paper, or radio parameters)",
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
            "--link-profile",
            dest="link_profile",
            metavar="FILE",
            help="the link measured by `flcompile profile --server`: its rate and latency "
            "per message, instead of --rate and --latency (which it excludes)",
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
                flag, dest=dest, type=positive, metavar=unit, help=f"{what} (radio parameter)"
            )
        link.add_argument(
            "--latency",
            dest="latency_s",
            type=non_negative,
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
        link.add_argument(
            "--send-dtype",
            dest="send_dtype",
            choices=SEND_DTYPES,
            default=DEFAULT_SEND_DTYPE,
            help="the dtype of what the device sends: float16 casts every float32 tensor it "
            "sends (cast back on the edge), so the link carries half the bytes, at the cost of "
            "float16 rounding (see --rtol); every plan and baseline is costed with it "
            "(default float32)",
        )

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """link, from --rate, --paper or the radio parameters.

        Raises:
            UsageError: both --rate and radio parameters, or no link at all, were given.
        """
        radio = {k: getattr(args, k) for k in RADIO if getattr(args, k) is not None}
        if args.rate is not None and radio:
            raise UsageError("give either --rate or the radio parameters, not both")
        latency = args.latency_s or 0.0
        if args.link_profile is not None:
            return {"link": self._profiled(args, radio)}
        if args.rate is not None:
            return {"link": LinkModel(args.rate, latency, None, args.return_rate)}
        if radio or args.paper:
            shannon = Shannon(**radio)
            rate = shannon.rate_MBps()
            return {"link": LinkModel(rate, latency, shannon, args.return_rate)}
        raise UsageError(
            "no link rate given",
            hint="pass --rate MB/s (e.g. --rate 1.8), --link-profile FILE, --paper, or "
            "--bandwidth-hz and friends",
        )

    @staticmethod
    def _profiled(args: argparse.Namespace, radio: dict) -> LinkModel:
        """The link of --link-profile; any other way to give the link is refused.

        Raises:
            UsageError: --rate, --latency, --paper or radio parameters given too.
            BadInputError: the file is not a link profile.
        """
        given = [
            flag
            for flag, value in (
                ("--rate", args.rate),
                ("--latency", args.latency_s),
                ("--paper", args.paper or None),
                ("radio parameters", radio or None),
            )
            if value is not None
        ]
        if given:
            raise UsageError(
                f"--link-profile gives the link's rate and latency; {given[0]} contradicts it",
                hint=f"drop {given[0]}, or --link-profile",
            )
        from flcompile.profile.link_json import read_link

        law = read_link(args.link_profile)
        return LinkModel(return_rate_MBps=args.return_rate, profile=args.link_profile, **law)


class ComputeArgs:
    """The device's and the edge's speeds, per-node overheads and the edge's concurrency."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the "compute" group to `parser`."""
        c = parser.add_argument_group("compute")
        for side, default in (("device", PAPER_DEVICE_FLOPS), ("edge", PAPER_EDGE_FLOPS)):
            c.add_argument(
                f"--{side}-flops",
                dest=f"{side}_flops",
                type=positive,
                metavar="FLOP/s",
                help=f"{side} speed (default {default:g})",
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
        for side in ("dev", "edge"):
            c.add_argument(
                f"--overhead-{side}",
                dest=f"overhead_{side}",
                type=non_negative,
                default=0.0,
                metavar="S",
                help=f"fixed {'device' if side == 'dev' else side} seconds per node (default 0)",
            )
        for side in ("device", "edge"):
            c.add_argument(
                f"--{side}-profile",
                dest=f"{side}_profile",
                metavar="FILE",
                help=f"the {side}'s measured costs (flcompile profile), instead of its "
                f"--{side}-flops and overhead",
            )

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """compute (it reads the link group's --paper too, for the edge's default)."""
        compute = compute_model(
            args.paper,
            args.edge_concurrency,
            device_flops=args.device_flops,
            edge_flops=args.edge_flops,
            overhead_dev_s=args.overhead_dev,
            overhead_edge_s=args.overhead_edge,
        )
        for side, overhead in (("device", "dev"), ("edge", "edge")):
            given = getattr(args, f"{side}_flops") or getattr(args, f"overhead_{overhead}")
            if getattr(args, f"{side}_profile") and given:
                raise UsageError(
                    f"--{side}-profile measures the {side}'s speed and overhead",
                    hint=f"drop --{side}-flops and --overhead-{overhead}",
                )
        return {"compute": profiled(compute, args.device_profile, args.edge_profile)}


class SearchArgs:
    """The solver and the search space: the grid and the fused tensor F."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the "search" group to `parser`."""
        s = parser.add_argument_group("search")
        s.add_argument(
            "--solver",
            dest="solver",
            choices=SOLVER_CHOICES,
            default="best",
            help="how the paths' order and cuts are chosen. mw: the paper's Minimizing "
            "Waiting heuristic; bf: brute force, the exact best order and cuts (small grids "
            "only); opt: flcompile's solver, equal to bf wherever bf runs and never worse "
            "than mw; nfl: no fused layers, the best single split point of the untiled "
            "model; scan: only the intermediate-reuse plans (every path sends raw input pixels, "
            "in a scan order of the grid; see --intermediate-reuse); best (default): mw on "
            "every F and grid, then opt on mw's 16 best and on every 2x2 grid, then the "
            "intermediate-reuse plans. "
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
            "--tiles",
            dest="tiles",
            choices=TILES_CHOICES,
            help=f"free: also choose the row and column boundaries of the grid (a local "
            f"search from equal splits); uniform: equal splits only (default "
            f"{DEFAULT_TILES}). With --grid the default is uniform, and --tiles free keeps "
            "the grid's shape but moves its boundaries",
        )
        s.add_argument(
            "--fuse-at",
            dest="fuse_at",
            metavar="TENSOR",
            help="fix the fused tensor F, by its tensor name in the model",
        )
        s.add_argument(
            "--reuse",
            dest="reuse",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="edge-side reuse: the edge keeps what it has received, so each path sends "
            "only the pixels of its cut tensors that earlier paths have not sent (at most two "
            f"rectangles per tensor). Default {'on' if DEFAULT_REUSE else 'off'}; --paper "
            "implies --no-reuse (the paper's independent paths) unless --reuse is given",
        )
        s.add_argument(
            "--intermediate-reuse",
            dest="intermediate",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="with --reuse, the edge also keeps what it has computed: --solver best also "
            "tries plans whose paths all send raw input pixels in a scan order of the grid and "
            "compute only what earlier paths have not. Default "
            f"{'on' if DEFAULT_INTERMEDIATE else 'off'} under --reuse",
        )

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """search (--reuse: the explicit flag, else off under --paper, else the default;
        --intermediate-reuse: the explicit flag, else the default under reuse).

        Raises:
            UsageError: --intermediate-reuse without edge-side reuse.
        """
        reuse = args.reuse
        if reuse is None:
            reuse = DEFAULT_REUSE and not args.paper
        if args.intermediate and not reuse:
            raise UsageError(
                "--intermediate-reuse needs edge-side reuse, which is off"
                + (" under --paper" if args.reuse is None else ""),
                hint="add --reuse, or drop --intermediate-reuse",
            )
        intermediate = DEFAULT_INTERMEDIATE if args.intermediate is None else args.intermediate
        options = SearchOptions(
            solver=args.solver,
            grid=args.grid,
            fuse_at=args.fuse_at,
            max_grid=args.max_grid,
            send_dtype=args.send_dtype,  # the link group's option; the search costs with it
            reuse=reuse,
            tiles=args.tiles,
            intermediate=reuse and intermediate,
        )
        return {"search": options}


class CheckArgs:
    """Verification in onnxruntime and the timed runs."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the "verification and timing" group to `parser`."""
        v = parser.add_argument_group("verification and timing")
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
                metavar="X",
                help=f"{flag} of the elementwise comparison (default 1e-5{scale}; 2^-8 ≈ "
                "3.9e-3 for the outputs with --send-dtype float16)",
            )
        v.add_argument(
            "--verify-inputs",
            dest="verify_inputs",
            metavar="N",
            type=count(1),
            default=1,
            help="verify on N inputs: --input's file or seed S, then seeds S+1 … S+N-1; the "
            "largest errors are reported (default 1)",
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
            help="onnxruntime threads for device.onnx and the local-only original (default 1)",
        )
        v.add_argument(
            "--edge-threads",
            dest="edge_threads",
            metavar="N",
            type=count(1),
            help="onnxruntime threads for edge.onnx and the original it is compared with "
            "(default: onnxruntime's, one per physical core)",
        )

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """verify, rtol, atol, runs, device_threads and edge_threads."""
        names = (
            "verify",
            "rtol",
            "atol",
            "verify_inputs",
            "runs",
            "device_threads",
            "edge_threads",
        )
        return {name: getattr(args, name) for name in names}


class OutputArgs:
    """What is written besides device.onnx, edge.onnx and the plan, and how much is said."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the "output" group to `parser` (-o OUT is the command's own option)."""
        o = parser.add_argument_group("output")
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
            help="also write tiled.onnx, the whole rewritten model before the split (a third "
            "copy of the weights)",
        )
        o.add_argument("-q", "--quiet", dest="quiet", action="store_true", help="print errors only")
        o.add_argument(
            "--debug",
            dest="debug",
            action="store_true",
            help="tracebacks, and keep models that fail verification in OUT.failed/",
        )

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """emit_stages, emit_tiled, debug, and progress (bars unless quiet or not a terminal)."""
        return {
            "emit_stages": args.emit_stages,
            "emit_tiled": args.emit_tiled,
            "debug": args.debug,
            "progress": not args.quiet and sys.stderr.isatty(),
        }


GROUPS: tuple[ArgGroup, ...] = (
    ModelArgs(),
    LinkArgs(),
    ComputeArgs(),
    SearchArgs(),
    CheckArgs(),
    OutputArgs(),
)
