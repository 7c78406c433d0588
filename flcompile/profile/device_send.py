"""The device's own work per message, measured by the link probe: CPU seconds times its CPU share.

Sending a path costs the device more than the link's time: building and serializing the
request, gRPC's work to hand it over, and handling its answer, all on the device's CPU,
which the device's compute shares. The probe records the process's CPU seconds (every
thread) of each request; each size's median is a point, and a least-squares line
cpu = a + b·bytes (a, b >= 0) is its law. On a device slower than its clock (a CPU quota,
a busy core) a CPU second takes more than a second: the CPU share is measured as the wall
seconds a busy loop needs per CPU second. The device's seconds per message are then
share · (a + b·bytes), which planning charges on the device's timeline (`LinkModel.device_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from flcompile.profile.link_fit import size_points

#: How long the busy loop that measures the CPU share runs (wall seconds): many cfs periods.
SHARE_SPIN_S = 0.5


@dataclass(frozen=True)
class DeviceSend:
    """The device's work per message.

    Attributes:
        cpu_s_per_message: CPU seconds per message (a).
        cpu_s_per_byte: CPU seconds per byte (b).
        cpu_share: wall seconds per CPU second on the device (1 on an idle, unthrottled core).
    """

    cpu_s_per_message: float
    cpu_s_per_byte: float
    cpu_share: float

    @property
    def s_per_message(self) -> float:
        """The device's seconds per message."""
        return self.cpu_share * self.cpu_s_per_message

    @property
    def s_per_byte(self) -> float:
        """The device's seconds per byte."""
        return self.cpu_share * self.cpu_s_per_byte

    def to_json(self) -> dict:
        """The link profile's `device` section."""
        return {
            "s_per_message": self.s_per_message,
            "s_per_byte": self.s_per_byte,
            "cpu_s_per_message": self.cpu_s_per_message,
            "cpu_s_per_byte": self.cpu_s_per_byte,
            "cpu_share": self.cpu_share,
        }


def cpu_share(
    spin_s: float = SHARE_SPIN_S,
    *,
    wall: Callable[[], float] = time.perf_counter,
    cpu: Callable[[], float] = time.thread_time,
) -> float:
    """Wall seconds per CPU second of this thread, from a busy loop of `spin_s` wall seconds.

    Args:
        spin_s: how long to spin.
        wall: the wall clock.
        cpu: this thread's CPU clock.

    Returns:
        The share, at least 1.
    """
    wall_start, cpu_start = wall(), cpu()
    while wall() - wall_start < spin_s:
        pass
    used = cpu() - cpu_start
    return max(1.0, (wall() - wall_start) / used) if used > 0 else 1.0


def fit_device_send(samples: Iterable[tuple[int, float]], share: float) -> DeviceSend:
    """The law cpu = a + b·bytes through each size's median CPU seconds (a, b >= 0).

    Args:
        samples: (bytes, CPU seconds) of every timed request.
        share: the device's wall seconds per CPU second (`cpu_share`).

    Returns:
        The device's work per message; all zero without two sizes.
    """
    points = size_points(samples)
    if len(points) < 2:
        return DeviceSend(0.0, 0.0, share)
    x = np.array([p.nbytes for p in points], dtype=np.float64)
    y = np.array([p.median_s for p in points], dtype=np.float64)
    (slope, intercept), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    if slope < 0:  # no measurable cost per byte: the mean is the cost per message
        slope, intercept = 0.0, float(y.mean())
    if intercept < 0:  # through the origin
        intercept, slope = 0.0, float(x @ y / (x @ x))
    return DeviceSend(float(max(intercept, 0.0)), float(max(slope, 0.0)), share)
