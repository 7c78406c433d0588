"""What a plan's paths cost in seconds: the solvers' `CostTable`, from FLOPs, bytes and speeds.

`cost_table` applies the compute model (`flcompile.costs.node_cost`) to each path's node
FLOPs and the link model (`flcompile.costs.link`) to what crosses each cut; the table is
everything a solver and the simulator see of one (F, grid) choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flcompile.costs.link import LinkModel
from flcompile.costs.node_cost import ComputeModel
from flcompile.costs.reuse import ReuseGeometry, ReuseLinks
from flcompile.costs.tiles import TileCosts


@dataclass(frozen=True, eq=False)
class CostTable:
    """Seconds per path and cut for one (F, grid) choice; the solvers' whole input.

    Cut k of a path means its first k nodes (in the path's topological order) run on the
    device: k = 0 sends the raw input tile, k = K - 1 keeps the whole path on the device
    and sends its tile of F. Every path has the same K because all paths copy one block.

    Attributes:
        device_s: (P, K) device seconds of path p with cut k: its nodes and their stage
            run's overhead (`ComputeModel.device_run_s`), and its own work to send what
            crosses the cut (`LinkModel.device_s`; 0 for k = 0 when that is 0).
        link_s: (P, K) seconds to send what crosses cut k of path p (latency included).
        edge_s: (P, K) edge seconds of the rest of path p and its stage run (0 for k = K - 1).
        post_fuse_s: edge seconds of the fuse and everything after it.
        edge_concurrency: 1 = serial edge, 0 = unlimited (paper's Eq. 4), k = k at once.
        return_s: seconds to return the results to the device after the last node (0 if ignored).
        reuse: with edge-side reuse, what each path's send costs given the earlier paths
            (`flcompile.costs.reuse`); `link_s` is then the cost with nothing held, an upper
            bound. None: paths are independent (the paper's model).
        waits: a send of 0 s still waits for the link to drain (under reuse a path whose
            region the edge holds entirely needs the pieces the earlier sends carry).
    """

    device_s: np.ndarray
    link_s: np.ndarray
    edge_s: np.ndarray
    post_fuse_s: float
    edge_concurrency: int = 1
    return_s: float = 0.0
    grid: tuple[int, int] = field(default=(1, 1))
    reuse: ReuseLinks | None = None
    waits: bool = False

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


def cost_table(
    costs: TileCosts,
    compute: ComputeModel,
    link: LinkModel,
    *,
    post_fuse_s: float,
    return_s: float,
    grid: tuple[int, int],
    reuse: ReuseGeometry | None = None,
) -> CostTable:
    """Seconds per path and cut under the given compute and link models.

    Args:
        costs: the tiling's FLOPs and bytes.
        compute: device and edge speeds and overheads.
        link: the device→edge link.
        post_fuse_s: edge seconds of the fuse and the rest of the model.
        return_s: seconds to return the results (0 when ignored).
        grid: (rows, columns), kept for reporting.
        reuse: the tiling's geometry for edge-side reuse, or None for independent paths.

    Returns:
        The solvers' input.
    """
    paths = costs.flops.shape[0]
    zeros = np.zeros((paths, 1))
    device_step = compute.device_nodes_s(costs.work)
    edge_step = compute.edge_nodes_s(costs.work)
    device_nodes = np.arange(device_step.shape[1] + 1, dtype=float)  # cut k: k on the device
    device_s = np.hstack([zeros, np.cumsum(device_step, axis=1)]) + link.device_s(costs.send_bytes)
    device_s = device_s + compute.device_run_s(device_nodes)
    edge_s = np.hstack([np.cumsum(edge_step[:, ::-1], axis=1)[:, ::-1], zeros])
    edge_s = edge_s + compute.edge_run_s(device_nodes[::-1])
    return CostTable(
        device_s,
        link.send_s(costs.send_bytes),
        edge_s,
        post_fuse_s=post_fuse_s,
        edge_concurrency=compute.edge_concurrency,
        return_s=return_s,
        grid=grid,
        reuse=None if reuse is None else ReuseLinks(reuse, link),
        waits=reuse is not None,
    )


def run_link_s(table: CostTable, orders: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Link seconds of every position of B complete schedules, reuse included.

    Args:
        table: the cost table.
        orders: (B, P) path indices in run order.
        cuts: (B, P) cuts indexed by path.

    Returns:
        (B, P) seconds in run order.
    """
    orders = np.asarray(orders, np.intp)
    cuts = np.asarray(cuts, np.intp)
    if table.reuse is not None:
        return table.reuse.run_s(orders, cuts)
    return table.link_s[orders, np.take_along_axis(cuts, orders, axis=1)]
