"""What a solver sees for one F and grid: per path and cut, device, link and edge seconds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class CostTable:
    """Seconds per path and cut for one (F, grid) choice; the solvers' whole input.

    Cut k of a path means its first k nodes (in the path's topological order) run on the
    device: k = 0 sends the raw input tile, k = K - 1 keeps the whole path on the device
    and sends its tile of F. Every path has the same K because all paths copy one block.

    Attributes:
        device_s: (P, K) device seconds of path p with cut k (0 for k = 0).
        link_s: (P, K) seconds to send what crosses cut k of path p (latency included).
        edge_s: (P, K) edge seconds of the rest of path p (0 for k = K - 1).
        post_fuse_s: edge seconds of the fuse and everything after it.
        edge_concurrency: 1 = serial edge, 0 = unlimited (paper's Eq. 4), k = k at once.
        return_s: seconds to return the results to the device after the last node (0 if ignored).
    """

    device_s: np.ndarray
    link_s: np.ndarray
    edge_s: np.ndarray
    post_fuse_s: float
    edge_concurrency: int = 1
    return_s: float = 0.0
    grid: tuple[int, int] = field(default=(1, 1))

    def __post_init__(self) -> None:
        shapes = {self.device_s.shape, self.link_s.shape, self.edge_s.shape}
        if len(shapes) != 1 or self.device_s.ndim != 2:
            raise ValueError(f"device/link/edge tables must share one (P, K) shape, got {shapes}")

    @property
    def num_paths(self) -> int:
        """P, the number of paths."""
        return int(self.device_s.shape[0])

    @property
    def num_cuts(self) -> int:
        """K, the number of cut choices per path (nodes in the path + 1)."""
        return int(self.device_s.shape[1])


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
