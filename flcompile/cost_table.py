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
from flcompile.passes.receptive_field import Block, Tiling


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


def crossing_by_cut(block: Block) -> tuple[tuple[str, ...], ...]:
    """For each cut k = 0..L, the block tensors that cross it, in production order."""
    produced = block.producer_index()
    last_use = block.last_use_index()
    tensors = sorted(produced, key=produced.__getitem__)
    return tuple(
        tuple(t for t in tensors if produced[t] < k <= last_use.get(t, -1))
        for k in range(len(block.nodes) + 1)
    )


def untiled_flops(block: Block) -> float:
    """FLOPs of the block as the original model computes it."""
    return float(sum(n.flops_per_pixel * n.out_size[0] * n.out_size[1] for n in block.nodes))


def tile_costs(tiling: Tiling, crossing: tuple[tuple[str, ...], ...] | None = None) -> TileCosts:
    """FLOPs and bytes of every path's node copies and sends.

    Args:
        tiling: the tiling.
        crossing: `crossing_by_cut(tiling.block)`, when the caller already has it.

    Returns:
        The per-path FLOP and byte tables.
    """
    block = tiling.block
    crossing = crossing_by_cut(block) if crossing is None else crossing
    rows, cols = tiling.rows, tiling.cols
    fpp = np.array([n.flops_per_pixel for n in block.nodes])
    heights = np.array([[r.out[i].size for r in rows] for i in range(len(block.nodes))], float)
    widths = np.array([[c.out[i].size for c in cols] for i in range(len(block.nodes))], float)
    flops = (
        (fpp[:, None, None] * heights[:, :, None] * widths[:, None, :])
        .reshape(len(block.nodes), -1)
        .T
    )

    produced = block.producer_index()
    tensors = tuple(sorted(produced, key=produced.__getitem__))
    bpp = np.array([block.bytes_per_pixel[t] for t in tensors])
    t_heights = np.array([[r.tensors[t].size for r in rows] for t in tensors], float)
    t_widths = np.array([[c.tensors[t].size for c in cols] for t in tensors], float)
    tensor_bytes = (
        (bpp[:, None, None] * t_heights[:, :, None] * t_widths[:, None, :])
        .reshape(len(tensors), -1)
        .T
    )
    index = {t: i for i, t in enumerate(tensors)}
    crosses = np.zeros((len(crossing), len(tensors)))
    for k, names in enumerate(crossing):
        crosses[k, [index[t] for t in names]] = 1.0
    send_bytes = tensor_bytes @ crosses.T
    redundancy = float(flops.sum() / max(untiled_flops(block), 1.0))
    return TileCosts(flops, send_bytes, crossing, tensor_bytes, tensors, redundancy)


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
    device_step = compute.overhead_dev_s + costs.flops / compute.device_flops
    edge_step = compute.overhead_edge_s + costs.flops / compute.edge_flops
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
