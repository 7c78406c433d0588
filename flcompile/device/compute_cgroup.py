"""Put the thread that runs the device stages, and only it, in a cpu cgroup.

An emulated slow device (tools/testbed.py) throttles the device's compute with a CPU
quota. Throttling the whole process would throttle its network stack too: gRPC's threads
would share the quota with the stages, and on a slow link their work while a message
drains (window updates, wake-ups) would starve the next stage and stretch the send. A
device's radio is not its CPU, and the quota stands for the device's FLOP rate (Table I's
ratio), not for its network stack. So `flcompile run --compute-cgroup DIR` moves the
calling thread into DIR, after the sender thread and gRPC's threads have started outside
it: cgroup v1 takes a thread id in `tasks`, v2 in `cgroup.threads` (of a threaded cgroup).
"""

from __future__ import annotations

import threading
from pathlib import Path

from flcompile.errors import BadInputError

#: The file that takes a thread id, by cgroup version (v1 first).
THREAD_FILES = ("tasks", "cgroup.threads")


def join_compute_cgroup(folder: str | Path) -> Path:
    """Move the calling thread into the cpu cgroup `folder`.

    Args:
        folder: the cgroup's directory (v1: under the cpu hierarchy; v2: a threaded cgroup).

    Returns:
        The file the thread id was written to.

    Raises:
        BadInputError: `folder` is not a cgroup, or the kernel refused the move.
    """
    folder = Path(folder)
    target = next((folder / name for name in THREAD_FILES if (folder / name).is_file()), None)
    if target is None:
        raise BadInputError(
            f"--compute-cgroup {folder}: not a cgroup (no {' or '.join(THREAD_FILES)})",
            hint="give a cpu cgroup's directory, e.g. /sys/fs/cgroup/cpu/NAME",
        )
    try:
        target.write_text(str(threading.get_native_id()))
    except OSError as e:
        raise BadInputError(
            f"--compute-cgroup {folder}: the kernel refused the thread ({e.strerror})",
            hint="run as root, and on cgroup v2 give a threaded cgroup",
        ) from e
    return target
