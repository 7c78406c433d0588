"""Start `flcompile serve` as a child process, wait until it is up, and stop it by its pid.

For tools and tests that need an edge server for a while (a load test, a testbed): the
server is stopped with SIGTERM, then SIGKILL if it hangs, and every process it started
(tritonserver, the Python-backend stubs) is checked and, if need be, killed by pid.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flcompile.serve import processes

UP = "flcompile serve: up at"


PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing uses at the moment, on `host`, below the ephemeral range.

    A port the kernel hands out (bind to 0) comes from the ephemeral range, from which it
    also picks the local ports of outgoing connections, so one may take it before the
    server binds it. Below that range no connection gets a port by chance.
    """
    try:
        ephemeral = int(PORT_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(LOWEST_PORT, max(ephemeral, LOWEST_PORT + 1000))
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded machine: let the kernel choose
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    """A running `flcompile serve`.

    Attributes:
        process: the child process.
        address: HOST:PORT of its gRPC endpoint.
        up_line: what it printed when it came up.
        below: the processes it started (tritonserver, stubs), as last seen.
        exit_code: its exit code, once stopped.
        leftovers: the processes that outlived it and had to be killed, once stopped.
        errors: the file its stderr goes to.
        stderr: the end of its stderr, once stopped.
    """

    process: subprocess.Popen
    address: str
    up_line: str
    below: list[processes.Proc] = field(default_factory=list)
    exit_code: int | None = None
    leftovers: list[processes.Proc] = field(default_factory=list)
    errors: IO[str] | None = field(default=None, repr=False)
    stderr: str = ""

    @property
    def pid(self) -> int:
        """The server's pid."""
        return self.process.pid

    def triton_processes(self) -> list[processes.Proc]:
        """tritonserver and its stubs, as they run now."""
        return [
            p
            for p in processes.descendants(self.pid)
            if p.name.startswith(("tritonserver", "triton_python"))
        ]

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM, wait, SIGKILL if it hangs; then kill by pid whatever it left running.

        Sets `exit_code`, and `leftovers` to the processes that outlived it.
        """
        self.below += processes.descendants(self.pid)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 5.0
        while any(processes.is_running(p) for p in self.below) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.exit_code = self.process.returncode
        self.leftovers = processes.kill(self.below)
        if self.errors is not None and not self.errors.closed:
            self.errors.seek(0)
            self.stderr = self.errors.read()[-4000:]
            self.errors.close()


def start(
    outs: Sequence[str | os.PathLike],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    options: Sequence[str] = (),
    prefix: Sequence[str] = (),
    startup_timeout_s: float = 180.0,
) -> ServeProcess:
    """Start `flcompile serve OUT... --host HOST --port PORT OPTIONS` and wait until it is up.

    Args:
        outs: the compiled plans.
        host: the address to listen on.
        port: the gRPC port (default: a free one).
        options: more `flcompile serve` options, e.g. ["--instances", "2"].
        prefix: a command to run it under, e.g. ["ip", "netns", "exec", "NS"].
        startup_timeout_s: how long to wait for the up line.

    Returns:
        The running server; the caller stops it (`ServeProcess.stop`).

    Raises:
        RuntimeError: it did not come up (it is stopped); its stderr's end is in the message.
    """
    port = port or free_port(host)
    argv = [*prefix, sys.executable, "-m", "flcompile", "serve", *map(os.fspath, outs)]
    argv += ["--host", host, "--port", str(port), *options]
    # A file, not a pipe: it never blocks serve. ServeProcess.stop reads and closes it.
    errors = tempfile.TemporaryFile("w+")  # noqa: SIM115
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True)
    server = ServeProcess(process, f"{host}:{port}", "", errors=errors)
    try:
        server.up_line = _wait_up(process, startup_timeout_s, errors)
    except BaseException:
        server.stop()
        raise
    server.below = processes.descendants(process.pid)
    return server


@contextlib.contextmanager
def serving(outs: Sequence[str | os.PathLike], **kwargs) -> Iterator[ServeProcess]:
    """`start(outs, **kwargs)` for the duration of the block, then `stop()`.

    Yields:
        The running server.
    """
    server = start(outs, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _wait_up(process: subprocess.Popen, timeout_s: float, errors) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                break
            line = process.stdout.readline()
            if line.startswith(UP):
                return line.strip()
            if not line:  # it exited
                process.wait(timeout=30)
                errors.seek(0)
                tail = errors.read()[-2000:]
                raise RuntimeError(f"flcompile serve exited ({process.returncode}): {tail}")
    raise RuntimeError(f"flcompile serve was not up within {timeout_s:g} s")
