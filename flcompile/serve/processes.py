"""The processes a server runs (tritonserver and its Python-backend stubs), read from /proc.

A process is identified by its pid and its start time, so a pid the kernel reuses later is
never taken for it. Used to make sure a stopped server leaves nothing behind, and to
measure the server's memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    """A process: its pid, its start time (clock ticks after boot) and its command name."""

    pid: int
    start: int
    name: str


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(name, parent pid, start time) from /proc/PID/stat, or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[19])


def _children_table() -> dict[int, list[Proc]]:
    """Every live process, by its parent's pid."""
    table: dict[int, list[Proc]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                name, parent, start = stat
                table.setdefault(parent, []).append(Proc(int(entry.name), start, name))
    return table


def children(pid: int) -> list[Proc]:
    """The live processes whose parent is `pid`."""
    return _children_table().get(pid, [])


def descendants(pid: int) -> list[Proc]:
    """Every live process below `pid` (children, their children, ...).

    Args:
        pid: the ancestor.

    Returns:
        The descendants, in no particular order.
    """
    table = _children_table()
    found: list[Proc] = []
    pending = [pid]
    while pending:
        for child in table.get(pending.pop(), []):
            found.append(child)
            pending.append(child.pid)
    return found


def is_running(proc: Proc) -> bool:
    """Whether `proc` still runs (a zombie, exited but not yet reaped, does not count)."""
    stat = _stat(proc.pid)
    if stat is None or stat[2] != proc.start:
        return False
    with contextlib.suppress(OSError):
        state = (PROC / str(proc.pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return False


def kill(procs: list[Proc]) -> list[Proc]:
    """SIGKILL each process of `procs` that still runs.

    Returns:
        The processes that were still running.
    """
    running = [p for p in procs if is_running(p)]
    for proc in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)
    return running


def rss_bytes(pid: int) -> int:
    """The resident memory of process `pid` in bytes (0 if it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """The resident memory of process `pid` and every process below it, in bytes."""
    return rss_bytes(pid) + sum(rss_bytes(p.pid) for p in descendants(pid))
