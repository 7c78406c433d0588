"""Run compiled plans' edges on Triton Inference Server through PyTriton.

Each plan is one Triton model (protocol.model_name) with one instance per concurrent
execution; the status model reports the frame counters and the server's memory, and the
probe model swallows payloads for `flcompile profile --server` (the link). PyTriton
runs tritonserver as a child process whose Python-backend stubs pass each request to the
handlers in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flcompile.deploy import protocol
from flcompile.errors import BadInputError
from flcompile.serve import processes
from flcompile.serve.edge_plan import EdgePlan

logger = logging.getLogger(__name__)

TRITONSERVER = "tritonserver"

#: How long tritonserver waits for requests in flight when it stops.
EXIT_TIMEOUT_S = 5
#: How long it gets to exit after SIGINT before SIGKILL.
STOP_GRACE_S = EXIT_TIMEOUT_S + 2.0
#: Starts tried when PyTriton's model instances race (see EdgeServer.start).
START_ATTEMPTS = 3
_HANDSHAKE_RACE = "handshake"


@dataclass(frozen=True)
class ServeOptions:
    """How to serve.

    Attributes:
        host: the address gRPC (and HTTP) listen on.
        port: the gRPC port.
        http_port: the HTTP port, or None for no HTTP.
        instances: concurrent executions per plan.
        threads: onnxruntime intra-op threads per execution (None: onnxruntime's default).
        frame_timeout_s: a frame idle this long is dropped.
        server_log: where tritonserver's own log goes (None: this process's stdout).
    """

    host: str
    port: int
    http_port: int | None
    instances: int
    threads: int | None
    frame_timeout_s: float
    server_log: Path | None


def fix_python_library_path() -> None:
    """Let the Python-backend stubs load this interpreter's libpython, not the system's.

    The stub links libpython3.X.so.1.0. Under an interpreter that is not the system's
    (pyenv, or a venv made from it), the loader finds the system's copy first, and the
    stub fails on loading a model (`'_thread.RLock' object has no attribute
    '_recursion_count'`). tritonserver and the stubs inherit this process's environment,
    so LD_LIBRARY_PATH starts with this interpreter's library directory when it holds one.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not libdir or not (Path(libdir) / f"libpython{version}.so.1.0").exists():
        return
    current = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if current[:1] != [libdir]:
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *current])


class EdgeServer:
    """Triton serving the edge of `plans`: start() binds and runs, stop() ends everything.

    Args:
        plans: the plans' edges.
        options: addresses, instances and timeouts.
    """

    def __init__(self, plans: list[EdgePlan], options: ServeOptions) -> None:
        self.plans = plans
        self.options = options
        self._triton = None
        self._children: list[processes.Proc] = []
        self._stop_reaper = threading.Event()
        self._reaper = threading.Thread(
            target=self._expire_frames, name="frame-expiry", daemon=True
        )

    def start(self) -> None:
        """Start tritonserver, load every plan's model, and start expiring idle frames.

        PyTriton's second and later instances of a model fetch their configuration from a
        socket the first instance opens, and may knock before it listens (under load);
        such a start is retried with a fresh tritonserver, up to START_ATTEMPTS times.

        Raises:
            BadInputError: tritonserver could not start or load a model.
        """
        fix_python_library_path()
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._launch()
                break
            except Exception as e:
                self._stop_triton()
                if attempt < START_ATTEMPTS and _HANDSHAKE_RACE in str(e):
                    logger.warning("Triton's model instances raced at start; starting again")
                    continue
                raise BadInputError(
                    f"Triton did not start ({type(e).__name__}: {e}){self._log_tail()}",
                    hint="rerun with -v to see tritonserver's log",
                ) from e
        self._children = self._triton_processes()
        self._reaper.start()

    def _launch(self) -> None:
        """A new tritonserver with every plan's model, the status and the probe model, up."""
        from pytriton.model_config import ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig

        o = self.options
        config = TritonConfig(
            grpc_address=o.host,
            grpc_port=o.port,
            allow_http=o.http_port is not None,
            http_address=o.host if o.http_port is not None else None,
            http_port=o.http_port,
            allow_metrics=False,
            allow_sagemaker=False,
            allow_vertex_ai=False,
            exit_timeout_secs=EXIT_TIMEOUT_S,
            log_file=o.server_log,
        )
        self._triton = Triton(config=config)
        unbatched = ModelConfig(batching=False)
        for plan in self.plans:
            self._triton.bind(
                model_name=plan.index.name,
                infer_func=[_infer(plan, i) for i in range(o.instances)],
                inputs=[
                    Tensor(name=s.name, shape=s.shape, dtype=s.dtype, optional=True)
                    for specs in plan.sends.values()
                    for s in specs
                ],
                outputs=[
                    *(Tensor(name=s.name, shape=s.shape, dtype=s.dtype) for s in plan.outputs),
                    Tensor(name=protocol.TIMINGS, shape=(-1, 4), dtype=np.float64),
                ],
                config=unbatched,
            )
        self._triton.bind(
            model_name=protocol.STATUS_MODEL,
            infer_func=self._status,
            inputs=[],
            outputs=[Tensor(name=n, shape=(1,), dtype=np.int64) for n in protocol.STATUS_OUTPUTS],
            config=unbatched,
        )
        self._triton.bind(
            model_name=protocol.PROBE_MODEL,
            infer_func=_probe_sink,
            inputs=[Tensor(name=protocol.PROBE_INPUT, shape=(-1,), dtype=np.uint8)],
            outputs=[Tensor(name=protocol.PROBE_OUTPUT, shape=(1,), dtype=np.int64)],
            config=unbatched,
        )
        self._triton.run()

    def alive(self) -> bool:
        """Whether tritonserver and every model still run."""
        return self._triton is not None and self._triton.is_alive()

    def stop(self) -> list[processes.Proc]:
        """Stop expiring frames and stop Triton (see `_stop_triton`).

        Returns:
            The processes that had to be killed (normally none).
        """
        self._stop_reaper.set()
        return self._stop_triton()

    def _stop_triton(self) -> list[processes.Proc]:
        """Stop Triton; kill any of its processes still running afterwards.

        tritonserver gets SIGINT and STOP_GRACE_S to finish the requests in flight, then
        SIGKILL: its graceful exit waits for every open gRPC stream to close, and a device
        keeps its stream open. PyTriton then unloads the models and removes its workspace.

        Returns:
            The processes that had to be killed after that (normally none).
        """
        self._children += self._triton_processes()
        servers = [p for p in self._children if p.name == TRITONSERVER]
        for proc in servers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        while any(processes.is_running(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        processes.kill(servers)
        if self._triton is not None:
            with contextlib.suppress(Exception):
                self._triton.stop()
        killed = processes.kill(self._children)
        self._children = []
        return killed

    def _triton_processes(self) -> list[processes.Proc]:
        """The tritonserver this process started and everything below it (the stubs).

        Only a direct child counts: a tritonserver further down belongs to another server.
        """
        if self._triton is None:
            return []
        found = []
        for proc in processes.children(os.getpid()):
            if proc.name == TRITONSERVER:
                found += [proc, *processes.descendants(proc.pid)]
        return found

    def _log_tail(self) -> str:
        log = self.options.server_log
        if log is None or not log.exists():
            return ""
        lines = [line for line in log.read_text(errors="replace").splitlines() if "E" in line[:1]]
        return f"; tritonserver: {lines[-1][:300]}" if lines else ""

    def _status(self, requests):
        stats = [plan.frames.stats() for plan in self.plans]
        values = {
            "frames_open": sum(s.open for s in stats),
            "frames_done": sum(s.done for s in stats),
            "frames_expired": sum(s.expired for s in stats),
            "requests_failed": sum(plan.requests_failed for plan in self.plans),
            "rss_bytes": processes.rss_bytes(os.getpid()),
        }
        return [{k: np.array([v], np.int64) for k, v in values.items()} for _ in requests]

    def _expire_frames(self) -> None:
        period = max(0.05, min(1.0, self.options.frame_timeout_s / 4))
        while not self._stop_reaper.wait(period):
            for plan in self.plans:
                dropped = plan.frames.expire()
                if dropped:
                    logger.warning("%s: dropped %d idle frame(s)", plan.index.name, dropped)


def _probe_sink(requests):
    """The link probe's model (`flcompile profile --server`): answer each payload's length."""
    return [
        {protocol.PROBE_OUTPUT: np.array([request.data[protocol.PROBE_INPUT].size], np.int64)}
        for request in requests
    ]


def _infer(plan: EdgePlan, instance: int):
    """The PyTriton callable of one instance of `plan`."""

    def infer(requests):
        return [plan.handle(instance, request.data, request.parameters) for request in requests]

    return infer
