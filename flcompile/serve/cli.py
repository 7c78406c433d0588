"""`flcompile serve OUT [OUT ...] --port P`: serve the edge of compiled plans until stopped.

It prints one line when the server is up, and one when it has stopped (SIGINT or SIGTERM);
tritonserver and its stubs are gone by then.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import signal
import socket
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from flcompile.arg_types import count, port, positive
from flcompile.command import OneLineParser, require_extra, run_guarded
from flcompile.deploy.plan_index import load_index
from flcompile.errors import BadInputError, InternalError

log = logging.getLogger("flcompile")

DESCRIPTION = """\
Serve the edge side of one or more compiled plans on Triton Inference Server (through
PyTriton), over the KServe v2 protocol: gRPC, and HTTP with --http-port. Each OUT is the
directory `flcompile MODEL -o OUT` wrote; each plan is one Triton model. A device sends a
frame's paths as separate requests in the plan's order (`flcompile run` does); the edge
runs each path's edge stage as it arrives, and answers the last with the model's outputs.
Every server also answers `flcompile profile --server HOST:PORT`, which measures the link
to it (its probe model). Stops cleanly on Ctrl-C or SIGTERM."""


def build_parser() -> argparse.ArgumentParser:
    """The options of `flcompile serve`."""
    p = OneLineParser(
        prog="flcompile serve",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "outs",
        nargs="*",
        metavar="OUT",
        help="a compiled plan's directory (none: only the link probe, for "
        "`flcompile profile --server`)",
    )
    p.add_argument(
        "--port", dest="port", type=port, required=True, metavar="P", help="the gRPC port"
    )
    p.add_argument(
        "--host",
        dest="host",
        default="0.0.0.0",
        help="the address to listen on (default 0.0.0.0, every interface; 127.0.0.1 for "
        "this machine only)",
    )
    p.add_argument(
        "--http-port", dest="http_port", type=port, metavar="P", help="also serve HTTP here"
    )
    p.add_argument(
        "--instances",
        dest="instances",
        type=count(1),
        default=1,
        metavar="K",
        help="concurrent executions per plan (default 1, the serial edge; the "
        "simulator's --edge-concurrency K)",
    )
    p.add_argument(
        "--threads",
        dest="threads",
        type=count(1),
        default=1,
        metavar="T",
        help="onnxruntime intra-op threads per execution (default 1)",
    )
    p.add_argument(
        "--frame-timeout",
        dest="frame_timeout",
        type=positive,
        default=30.0,
        metavar="S",
        help="drop a frame whose next path has not come for S seconds (default 30)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        dest="verbose",
        action="count",
        default=0,
        help="log each refused request; -vv also shows tritonserver's log",
    )
    p.add_argument("--debug", dest="debug", action="store_true", help="tracebacks")
    return p


def main(argv: Sequence[str]) -> int:
    """Run `flcompile serve`; returns the exit code (0 after a clean stop)."""
    argv = list(argv)
    return run_guarded(lambda: _serve(argv), debug="--debug" in argv, interrupted="stopped")


def _check_port(host: str, number: int) -> None:
    """Refuse a port that something already listens on, before Triton's slow start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), number))
        except OSError as e:
            why = "in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            raise BadInputError(
                f"cannot listen on {host}:{number} ({why})", hint="choose another --port"
            ) from e


def _serve(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    level = (logging.ERROR, logging.WARNING, logging.INFO)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    require_extra("pytriton", "serve", "serve")
    if args.verbose < 2:
        logging.getLogger("pytriton").setLevel(logging.CRITICAL)
        # PyTriton's own readiness checks warn that tritonclient.grpc ignores a timeout.
        warnings.filterwarnings("ignore", message=".*doesn't support timeout")
    from flcompile.serve.edge_plan import EdgePlan
    from flcompile.serve.triton_app import EdgeServer, ServeOptions

    for number in (args.port, args.http_port):
        if number is not None:
            _check_port(args.host, number)
    indexes = [load_index(out) for out in args.outs]
    names = [i.name for i in indexes]
    if len(set(names)) != len(names):
        raise BadInputError("two OUTs hold the same plan", hint="pass each plan once")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        logdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flcompile-serve-")))
        plans = [
            EdgePlan(
                index,
                instances=args.instances,
                threads=args.threads,
                frame_timeout_s=args.frame_timeout,
                stack=stack,
            )
            for index in indexes
        ]
        options = ServeOptions(
            host=args.host,
            port=args.port,
            http_port=args.http_port,
            instances=args.instances,
            threads=args.threads,
            frame_timeout_s=args.frame_timeout,
            server_log=None if args.verbose >= 2 else logdir / "tritonserver.log",
        )
        server = EdgeServer(plans, options)
        try:
            server.start()
            print(_up_line(args, plans), flush=True)
            while not stop.wait(0.5):
                if not server.alive():
                    raise InternalError("tritonserver stopped by itself")
        finally:
            killed = server.stop()
        stats = [p.frames.stats() for p in plans]
        print(
            f"flcompile serve: stopped; {sum(s.done for s in stats)} frame(s) served, "
            f"{sum(s.expired for s in stats)} expired, "
            f"{sum(p.requests_failed for p in plans)} request(s) refused",
            flush=True,
        )
        if killed:
            names = ", ".join(f"{p.name} ({p.pid})" for p in killed)
            print(f"flcompile serve: had to kill {names}", file=sys.stderr)
    return 0


def _up_line(args: argparse.Namespace, plans) -> str:
    http = f", HTTP on port {args.http_port}" if args.http_port else ""
    models = ", ".join(f"{p.index.name} ({len(p.index.paths)} paths)" for p in plans)
    models = models or "none (the link probe only)"
    return (
        f"flcompile serve: up at {args.host}:{args.port} (KServe v2 gRPC{http}); "
        f"models: {models}; {args.instances} instance(s) x {args.threads} thread(s); "
        "Ctrl-C stops"
    )
