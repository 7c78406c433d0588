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
from flcompile.costs.node_cost import NodeWork, node_work
from flcompile.costs.node_key import counts_inputs, node_key
from flcompile.costs.reuse import ReuseGeometry, reuse_geometry
from flcompile.costs.wire import DEFAULT_SEND_DTYPE, wire_itemsize
from flcompile.passes.receptive_field import Block, Tiling


@dataclass(frozen=True, eq=False)
class BlockCosts:
    """The per-pixel costs of one block, shared by all its tilings.

    Attributes:
        flops_per_pixel: (L,) FLOPs per output pixel (H·W) of each block node.
        tensor_bytes_per_pixel: (T,) bytes per pixel of each tensor in `Block.tensors`, as
            sent (in the wire dtype).
        crossing_matrix: (K, T) indicator: tensor t crosses cut k (`Block.crossing`).
        untiled_flops: FLOPs of the block as the original model computes it.
        keys: (L,) each block node's law key (`flcompile.costs.node_key`).
        node_tensors: (L, T) indicator: node l reads or writes tensor t (its bytes).
        memory_bytes_per_pixel: (T,) bytes per pixel of each tensor in memory (its own
            dtype), what a node's law counts; None: as sent.
    """

    flops_per_pixel: np.ndarray
    tensor_bytes_per_pixel: np.ndarray
    crossing_matrix: np.ndarray
    untiled_flops: float
    keys: tuple[str, ...] = ()
    node_tensors: np.ndarray | None = None
    memory_bytes_per_pixel: np.ndarray | None = None


def block_costs(graph: gs.Graph, block: Block, send_dtype: str = DEFAULT_SEND_DTYPE) -> BlockCosts:
    """Per-pixel FLOPs and bytes of a block, and which tensors cross each cut.

    Args:
        graph: the graph the block was made from.
        block: the block.
        send_dtype: the wire dtype (`flcompile.costs.wire`): a tensor's bytes are what it
            costs on the link.

    Returns:
        The block's per-pixel costs.
    """
    by_name = {n.name: n for n in graph.nodes}
    per_pixel = [flops_per_pixel(by_name[n.name]) for n in block.nodes]
    untiled = float(
        sum(f * n.out_size[0] * n.out_size[1] for f, n in zip(per_pixel, block.nodes, strict=True))
    )
    bytes_per_pixel, memory_per_pixel = [], []
    for t in block.tensors:
        n, c = block.channel_shapes[t]
        bytes_per_pixel.append(float(n * c * wire_itemsize(block.dtypes[t], send_dtype)))
        memory_per_pixel.append(float(n * c * block.dtypes[t].itemsize))
    index = {t: i for i, t in enumerate(block.tensors)}
    crossing = np.zeros((len(block.crossing), len(block.tensors)))
    for k, names in enumerate(block.crossing):
        crossing[k, [index[t] for t in names]] = 1.0
    return BlockCosts(
        np.array(per_pixel, float),
        np.array(bytes_per_pixel, float),
        crossing,
        untiled,
        tuple(node_key(by_name[n.name]) for n in block.nodes),
        _node_tensors(block, index),
        np.array(memory_per_pixel, float),
    )


def _node_tensors(block: Block, index: dict[str, int]) -> np.ndarray:
    """(L, T): the block tensors each node reads (tiled inputs) and writes, as its bytes
    count them (`flcompile.costs.node_key.activation_bytes`)."""
    matrix = np.zeros((len(block.nodes), len(block.tensors)))
    for row, node in enumerate(block.nodes):
        read = [t for t in node.inputs if t is not None] if counts_inputs(node.op) else []
        matrix[row, [index[t] for t in (*read, *node.outputs) if t in index]] = 1.0
    return matrix


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
        keys: (L,) each block node's law key.
        node_bytes: (P, L) activation bytes of each path's copy of each block node.
        memory_bytes: (P, T) like `tensor_bytes`, in memory (each tensor's own dtype);
            None: as sent.
    """

    flops: np.ndarray
    send_bytes: np.ndarray
    crossing: tuple[tuple[str, ...], ...]
    tensor_bytes: np.ndarray
    tensors: tuple[str, ...]
    redundancy: float
    keys: tuple[str, ...] = ()
    node_bytes: np.ndarray | None = None
    memory_bytes: np.ndarray | None = None

    @property
    def work(self) -> NodeWork:
        """What each path's node copies compute, for a compute model."""
        return node_work(self.keys, self.flops, self.node_bytes)

    @property
    def fused_bytes(self) -> float:
        """Bytes of F as the fuse reads it, all tiles together (the tensor that crosses the
        last cut)."""
        columns = [self.tensors.index(t) for t in self.crossing[-1]]
        in_memory = self.tensor_bytes if self.memory_bytes is None else self.memory_bytes
        return float(in_memory[:, columns].sum())


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
    heights = np.stack([r.tensor_sizes for r in rows], axis=1)
    widths = np.stack([c.tensor_sizes for c in cols], axis=1)
    tensor_bytes = _per_path(costs.tensor_bytes_per_pixel, heights, widths)
    memory_bytes = (
        tensor_bytes
        if costs.memory_bytes_per_pixel is None
        else _per_path(costs.memory_bytes_per_pixel, heights, widths)
    )
    send_bytes = tensor_bytes @ costs.crossing_matrix.T
    untiled = costs.untiled_flops
    redundancy = float(flops.sum() / untiled) if untiled > 0 else 1.0
    node_bytes = None if costs.node_tensors is None else memory_bytes @ costs.node_tensors.T
    return TileCosts(
        flops,
        send_bytes,
        block.crossing,
        tensor_bytes,
        block.tensors,
        redundancy,
        costs.keys,
        node_bytes,
        memory_bytes,
    )


def tiling_geometry(tiling: Tiling, costs: BlockCosts) -> ReuseGeometry:
    """Every path's region of every block tensor, for edge-side reuse.

    Args:
        tiling: the tiling (any row and column intervals).
        costs: the per-pixel costs of the tiling's block.

    Returns:
        The reuse geometry of the tiling.
    """
    tensors = tiling.block.tensors
    # (tiles on the axis, T, 2)
    rows = np.array([r.tensor_spans for r in tiling.rows], np.int64).reshape(-1, len(tensors), 2)
    cols = np.array([c.tensor_spans for c in tiling.cols], np.int64).reshape(-1, len(tensors), 2)
    num_rows, num_cols = len(rows), len(cols)
    h = np.repeat(rows, num_cols, axis=0)  # paths row-major, as `Tiling.axes`
    w = np.tile(cols, (num_rows, 1, 1))
    regions = np.concatenate([h, w], axis=2).transpose(1, 0, 2)  # (T, P, 4)
    return reuse_geometry(tensors, regions, costs.tensor_bytes_per_pixel, costs.crossing_matrix > 0)
