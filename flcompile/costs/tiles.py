"""What a tiled block costs before any speed or rate applies: FLOPs and bytes per path and cut.

FLOPs of a tile copy are the node's FLOPs per output pixel times the pixels the copy computes
(see `flcompile.costs.flops` for the counting rule); what crosses cut k is every tensor
produced before node k (the input tile counts as produced first) and read at or after it
(F is read by the fuse, after the last node). `block_costs` gives the per-pixel amounts of
one F once; `tile_costs` scales them by each grid's regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.costs.flops import flops_per_pixel
from flcompile.costs.reuse import ReuseGeometry, reuse_geometry
from flcompile.passes.receptive_field import Block, Tiling


@dataclass(frozen=True, eq=False)
class BlockCosts:
    """The per-pixel costs of one block, shared by all its tilings.

    Attributes:
        flops_per_pixel: (L,) FLOPs per output pixel (H·W) of each block node.
        tensor_bytes_per_pixel: (T,) bytes per pixel of each tensor in `Block.tensors`.
        crossing_matrix: (K, T) indicator: tensor t crosses cut k (`Block.crossing`).
        untiled_flops: FLOPs of the block as the original model computes it.
    """

    flops_per_pixel: np.ndarray
    tensor_bytes_per_pixel: np.ndarray
    crossing_matrix: np.ndarray
    untiled_flops: float


def block_costs(graph: gs.Graph, block: Block) -> BlockCosts:
    """Per-pixel FLOPs and bytes of a block, and which tensors cross each cut.

    Args:
        graph: the graph the block was made from.
        block: the block.

    Returns:
        The block's per-pixel costs.
    """
    by_name = {n.name: n for n in graph.nodes}
    per_pixel = [flops_per_pixel(by_name[n.name]) for n in block.nodes]
    untiled = float(
        sum(f * n.out_size[0] * n.out_size[1] for f, n in zip(per_pixel, block.nodes, strict=True))
    )
    bytes_per_pixel = []
    for t in block.tensors:
        n, c = block.channel_shapes[t]
        bytes_per_pixel.append(float(n * c * block.dtypes[t].itemsize))
    index = {t: i for i, t in enumerate(block.tensors)}
    crossing = np.zeros((len(block.crossing), len(block.tensors)))
    for k, names in enumerate(block.crossing):
        crossing[k, [index[t] for t in names]] = 1.0
    return BlockCosts(
        np.array(per_pixel, float), np.array(bytes_per_pixel, float), crossing, untiled
    )


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


def tile_costs(tiling: Tiling, costs: BlockCosts) -> TileCosts:
    """FLOPs and bytes of every path's node copies and sends.

    Args:
        tiling: the tiling.
        costs: the per-pixel costs of the tiling's block.

    Returns:
        The per-path FLOP and byte tables.
    """
    block = tiling.block
    rows, cols = tiling.rows, tiling.cols
    flops = _per_path(
        costs.flops_per_pixel,
        np.stack([r.out_sizes for r in rows], axis=1),
        np.stack([c.out_sizes for c in cols], axis=1),
    )
    tensor_bytes = _per_path(
        costs.tensor_bytes_per_pixel,
        np.stack([r.tensor_sizes for r in rows], axis=1),
        np.stack([c.tensor_sizes for c in cols], axis=1),
    )
    send_bytes = tensor_bytes @ costs.crossing_matrix.T
    untiled = costs.untiled_flops
    redundancy = float(flops.sum() / untiled) if untiled > 0 else 1.0
    return TileCosts(flops, send_bytes, block.crossing, tensor_bytes, block.tensors, redundancy)


def tiling_geometry(tiling: Tiling, costs: BlockCosts) -> ReuseGeometry:
    """Every path's region of every block tensor, for edge-side reuse.

    Args:
        tiling: the tiling (any row and column intervals).
        costs: the per-pixel costs of the tiling's block.

    Returns:
        The reuse geometry of the tiling.
    """
    tensors = tiling.block.tensors

    def spans(axis: tuple) -> np.ndarray:  # (tiles on the axis, T, 2)
        return np.array([[(r.tensors[t].start, r.tensors[t].stop) for t in tensors] for r in axis])

    rows, cols = spans(tiling.rows), spans(tiling.cols)
    num_rows, num_cols = len(rows), len(cols)
    h = np.repeat(rows, num_cols, axis=0)  # paths row-major, as `Tiling.axes`
    w = np.tile(cols, (num_rows, 1, 1))
    regions = np.concatenate([h, w], axis=2).transpose(1, 0, 2)  # (T, P, 4)
    return reuse_geometry(tensors, regions, costs.tensor_bytes_per_pixel, costs.crossing_matrix > 0)
