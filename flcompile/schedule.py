"""A solver's answer (`Schedule`) and a plan's simulated `Timeline`.

The solvers' input, `CostTable`, is in `flcompile.costs.table`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """A solver's answer: the order the paths run in and each path's cut.

    Attributes:
        order: path indices (row-major grid index) in the order they run on the device.
        cuts: cuts[p] is the cut of path p (indexed by path, not by position in `order`).
    """

    order: tuple[int, ...]
    cuts: tuple[int, ...]


@dataclass(frozen=True)
class PathTimes:
    """When one path's device, link and edge work start and end in a simulated timeline."""

    path: int
    device_start: float
    device_end: float
    link_start: float
    link_end: float
    edge_start: float
    edge_end: float


@dataclass(frozen=True)
class Timeline:
    """A simulated plan: per-path times in run order, the fuse start and the predicted latency."""

    paths: tuple[PathTimes, ...]
    fuse_start: float
    finish: float


def one_path_timeline(device_s: float, link_s: float, edge_s: float, return_s: float) -> Timeline:
    """A plan without fused layers as one path, 0: device, then link, then edge, then return.

    Args:
        device_s, link_s, edge_s, return_s: the seconds of each stage.

    Returns:
        The timeline; its finish is the sum of the four.
    """
    link_end = device_s + link_s
    end = link_end + edge_s
    times = PathTimes(0, 0.0, device_s, device_s, link_end, link_end, end)
    return Timeline((times,), end, end + return_s)
