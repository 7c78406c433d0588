"""Turn a tiling into the solvers' `CostTable`: per path and cut, device, link and edge seconds.

FLOPs of a tile copy are the node's FLOPs per output pixel times the pixels the copy computes
(see `flcompile.flops` for the counting rule); what crosses cut k is every tensor produced
before node k (the input tile counts as produced first) and read at or after it (F is read
by the fuse, after the last node).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flcompile.costs import ComputeModel, LinkModel
from flcompile.instance import CostTable
from flcompile.passes.receptive_field import Tiling


@dataclass(frozen=True, eq=False)
class TileCosts:
    """The numbers behind a `CostTable`, kept for plan.json and the summary.

    Attributes:
        flops: (P, L) FLOPs of each path's copy of each block node.
        send_bytes: (P, K) bytes that cross cut k of path p.
        crossing: per cut k, the block tensors that cross it.
        tensor_bytes: (P, T) bytes of each path's copy of each tensor in `tensors`.
        tensors: the block tensors, input first, in production order.
        redundancy: Σ over paths of FLOPs / the block's untiled FLOPs.
    """

    flops: np.ndarray
    send_bytes: np.ndarray
    crossing: tuple[tuple[str, ...], ...]
    tensor_bytes: np.ndarray
    tensors: tuple[str, ...]
    redundancy: float


def _per_path(per_pixel: np.ndarray, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """(P, N) per-pixel amounts times each path's rows × columns, paths row-major."""
    grid = per_pixel[:, None, None] * heights[:, :, None] * widths[:, None, :]
    return grid.reshape(len(per_pixel), -1).T


def tile_costs(tiling: Tiling) -> TileCosts:
    """FLOPs and bytes of every path's node copies and sends.

    Args:
        tiling: the tiling.

    Returns:
        The per-path FLOP and byte tables.
    """
    block = tiling.block
    rows, cols = tiling.rows, tiling.cols
    flops = _per_path(
        block.flops_per_pixel,
        np.stack([r.out_sizes for r in rows], axis=1),
        np.stack([c.out_sizes for c in cols], axis=1),
    )
    tensor_bytes = _per_path(
        block.tensor_bytes_per_pixel,
        np.stack([r.tensor_sizes for r in rows], axis=1),
        np.stack([c.tensor_sizes for c in cols], axis=1),
    )
    send_bytes = tensor_bytes @ block.crossing_matrix.T
    untiled = block.untiled_flops
    redundancy = float(flops.sum() / untiled) if untiled > 0 else 1.0
    return TileCosts(flops, send_bytes, block.crossing, tensor_bytes, block.tensors, redundancy)


def cost_table(
    costs: TileCosts,
    compute: ComputeModel,
    link: LinkModel,
    *,
    post_fuse_s: float,
    return_s: float,
    grid: tuple[int, int],
) -> CostTable:
    """Seconds per path and cut under the given compute and link models.

    Args:
        costs: the tiling's FLOPs and bytes.
        compute: device and edge speeds and overheads.
        link: the device→edge link.
        post_fuse_s: edge seconds of the fuse and the rest of the model.
        return_s: seconds to return the results (0 when ignored).
        grid: (rows, columns), kept for reporting.

    Returns:
        The solvers' input.
    """
    paths = costs.flops.shape[0]
    zeros = np.zeros((paths, 1))
    device_step = compute.device_s(costs.flops)
    edge_step = compute.edge_s(costs.flops)
    device_s = np.hstack([zeros, np.cumsum(device_step, axis=1)])
    edge_s = np.hstack([np.cumsum(edge_step[:, ::-1], axis=1)[:, ::-1], zeros])
    rate = link.rate_MBps * 1e6
    link_s = np.where(costs.send_bytes > 0, link.latency_s + costs.send_bytes / rate, 0.0)
    return CostTable(
        device_s,
        link_s,
        edge_s,
        post_fuse_s=post_fuse_s,
        edge_concurrency=compute.edge_concurrency,
        return_s=return_s,
        grid=grid,
    )
