"""Fit the link's law, seconds = latency + bytes / rate, to timed messages of several sizes.

Each size's median time (robust to a stray slow request) is one point; a least-squares line
through those points gives the per-message latency (intercept) and the rate (1 / slope).
A negative intercept (noise on a fast link) is clamped to 0 and the slope refitted through
the origin, as the cost model's latency is never negative (docs/design.md §4).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from flcompile.costs import BYTES_PER_MB
from flcompile.errors import BadInputError


@dataclass(frozen=True)
class SizePoint:
    """One payload size: its bytes, the median of its request times, and how many there were."""

    nbytes: int
    median_s: float
    n: int


@dataclass(frozen=True)
class LinkFit:
    """The fitted link: latency + bytes / rate, and the points it was fitted to.

    Attributes:
        rate_MBps: the rate in MB/s (1 MB = 1e6 bytes).
        latency_s: the fixed seconds per message.
        points: one per payload size, smallest first.
    """

    rate_MBps: float
    latency_s: float
    points: tuple[SizePoint, ...]

    def seconds(self, nbytes: float) -> float:
        """The law's time for one message of `nbytes` bytes."""
        return self.latency_s + nbytes / (self.rate_MBps * BYTES_PER_MB)

    def worst_error(self) -> float:
        """The largest relative gap between a size's median and the law."""
        return max(abs(p.median_s - self.seconds(p.nbytes)) / p.median_s for p in self.points)


def size_points(samples: Iterable[tuple[int, float]]) -> tuple[SizePoint, ...]:
    """Each size's median time, smallest size first.

    Args:
        samples: (bytes, seconds) of every timed request.

    Returns:
        One point per distinct size.
    """
    by_size: dict[int, list[float]] = defaultdict(list)
    for nbytes, seconds in samples:
        by_size[int(nbytes)].append(float(seconds))
    return tuple(
        SizePoint(n, statistics.median(times), len(times)) for n, times in sorted(by_size.items())
    )


def fit_link(samples: Iterable[tuple[int, float]]) -> LinkFit:
    """Fit seconds = latency + bytes / rate to timed requests.

    Args:
        samples: (bytes, seconds) of every timed request, at two sizes or more.

    Returns:
        The fitted law (latency >= 0, rate > 0).

    Raises:
        BadInputError: fewer than two sizes, or times that do not grow with the size.
    """
    points = size_points(samples)
    hint = "probe with larger and more different --sizes, or more --rounds"
    if len(points) < 2:
        raise BadInputError("the link probe needs times at two payload sizes or more", hint=hint)
    x = np.array([p.nbytes for p in points], dtype=np.float64)
    y = np.array([p.median_s for p in points], dtype=np.float64)
    (slope, intercept), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    if intercept < 0:
        intercept, slope = 0.0, float(x @ y / (x @ x))
    if not slope > 0:
        raise BadInputError(
            "the link probe's times do not grow with the payload size "
            f"({points[0].median_s * 1e3:.3g} ms at {points[0].nbytes} B, "
            f"{points[-1].median_s * 1e3:.3g} ms at {points[-1].nbytes} B)",
            hint=hint,
        )
    return LinkFit(1.0 / (slope * BYTES_PER_MB), float(intercept), points)
