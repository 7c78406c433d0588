"""Receptive-field analysis (docs/design.md §2): the region of each block tensor a tile of F needs.

Regions are half-open intervals per axis in the unpadded coordinates of each tensor. Each
node's `LocalOp` holds its axis maps (`flcompile.passes.ops.axes`); a window op maps output
[o0, o1) to the wanted input [o0·s − p_begin, (o1 − 1)·s − p_begin + d·(k − 1) + 1); the real
input is that ∩ [0, n) and the difference becomes the tile's own pads, so interior borders
get pad 0. H and W are independent, so every analysis runs per axis and a tile combines its
row's and column's.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.passes.cuts import tensors_crossing_each_cut
from flcompile.passes.fusable import Candidate, FusablePrefix
from flcompile.passes.local_ops import LocalOp, batch_size, hw
from flcompile.passes.ops.axes import EmptyRegionError as EmptyRegionError  # re-exported
from flcompile.passes.ops.axes import Interval


@dataclass(frozen=True)
class BlockNode:
    """One node of a block, reduced to what the region analysis needs.

    Attributes:
        name: the node's name.
        op: the ONNX op type.
        local: how it maps regions.
        inputs: per input slot, the tensor name when the slot is tiled, else None.
        outputs: its output tensor names ("" for an omitted optional output).
        in_sizes: per input slot, the (H, W) of the tiled input, else None.
        out_size: the (H, W) of its outputs.
    """

    name: str
    op: str
    local: LocalOp
    inputs: tuple[str | None, ...]
    outputs: tuple[str, ...]
    in_sizes: tuple[tuple[int, int] | None, ...]
    out_size: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Block:
    """The subgraph from the model input to F, ready for per-axis analysis.

    Attributes:
        input: the model input's name.
        input_shape: its NCHW shape.
        fused: F's name.
        fused_shape: F's NCHW shape.
        nodes: the block's nodes in topological order.
        dtypes: numpy dtype of every block tensor.
        channel_shapes: every block tensor's (N, C).
        tensors: every block tensor in production order, the input first.
        input_axes: the input's (H, W) axes, (2, 3) for NCHW or (1, 2) for NHWC.
    """

    input: str
    input_shape: tuple[int, ...]
    fused: str
    fused_shape: tuple[int, ...]
    nodes: tuple[BlockNode, ...]
    dtypes: dict[str, np.dtype]
    channel_shapes: dict[str, tuple[int, int]]
    tensors: tuple[str, ...] = ()
    input_axes: tuple[int, int] = (2, 3)

    def tile_shape(self, tensor: str, h: int, w: int) -> list:
        """The shape of a tile of `tensor` with h rows and w columns, in its own layout."""
        n, c = self.input_shape[0], self.channel_shapes[tensor][1]  # a symbolic batch stays
        if tensor == self.input and self.input_axes == (1, 2):
            return [n, h, w, c]
        return [n, c, h, w]

    @functools.cached_property
    def crossing(self) -> tuple[tuple[str, ...], ...]:
        """For each cut k = 0..L, the tensors produced before node k and read at or after it."""
        return tensors_crossing_each_cut(
            self.tensors, self.producer_index(), self.last_use_index(), len(self.nodes)
        )

    def producer_index(self) -> dict[str, int]:
        """Index of each tensor's producing node; the model input gets -1."""
        index = {self.input: -1}
        for i, node in enumerate(self.nodes):
            index.update({o: i for o in node.outputs if o})
        return index

    def last_use_index(self) -> dict[str, int]:
        """Index of each tensor's last consumer in the block; F's is len(nodes) (the fuse)."""
        last: dict[str, int] = {self.fused: len(self.nodes)}
        for i, node in enumerate(self.nodes):
            for t in node.inputs:
                if t is not None:
                    last[t] = max(last.get(t, -1), i)
        return last


@dataclass(frozen=True, eq=False)
class AxisRegions:
    """The result of one backward pass along one axis, for one interval of F.

    Attributes:
        out: per node, the interval of its outputs that its tile copy computes.
        reads: per node and input slot, the interval that slot reads (None if not tiled).
        pads: per node, the (begin, end) pads its tile copy gets along this axis.
        tensors: the computed interval of every block tensor; the input's is its slice.
        fused: the interval of F this pass was asked for.
        out_sizes: (L,) the sizes of `out`, for vectorised cost tables.
        tensor_sizes: (T,) the sizes of `tensors`, in the block's tensor order.
        tensor_spans: (T, 2) int the (start, stop) of `tensors`, in the same order.
        out_spans: (L, 2) int the (start, stop) of `out`.
    """

    out: tuple[Interval, ...]
    reads: tuple[tuple[Interval | None, ...], ...]
    pads: tuple[tuple[int, int], ...]
    tensors: dict[str, Interval]
    fused: Interval
    out_sizes: np.ndarray
    tensor_sizes: np.ndarray
    tensor_spans: np.ndarray
    out_spans: np.ndarray


def make_block(graph: gs.Graph, prefix: FusablePrefix, candidate: Candidate) -> Block:
    """Reduce the nodes between the input and `candidate` to a `Block`.

    Args:
        graph: the normalized graph.
        prefix: its fusable prefix.
        candidate: the chosen F.

    Returns:
        The block.
    """
    tensors = graph.tensors()
    by_name = {n.name: n for n in graph.nodes}
    x = tensors[prefix.input]
    nodes = []
    dtypes: dict[str, np.dtype] = {}
    channel_shapes: dict[str, tuple[int, int]] = {}

    def note(t: gs.Tensor, channel_axis: int = 1) -> None:
        n, c = batch_size(t.shape[0]), int(t.shape[channel_axis])
        dtypes[t.name] = np.dtype(t.dtype)
        channel_shapes[t.name] = (n, c)

    x_axes = prefix.input_axes
    note(x, channel_axis=3 if x_axes == (1, 2) else 1)

    def size(t: gs.Tensor) -> tuple[int, int]:
        return (int(t.shape[x_axes[0]]), int(t.shape[x_axes[1]])) if t is x else hw(t)

    for name in candidate.block:
        node = by_name[name]
        for o in node.outputs:
            if o.name:
                note(o)
        nodes.append(_block_node(node, prefix.ops[name], size))
    tensors = (prefix.input, *(o for n in nodes for o in n.outputs if o))
    return Block(
        prefix.input,
        tuple(x.shape),
        candidate.tensor,
        candidate.shape,
        tuple(nodes),
        dtypes,
        channel_shapes,
        tensors,
        x_axes,
    )


def _block_node(
    node: gs.Node, local: LocalOp, size: Callable[[gs.Tensor], tuple[int, int]]
) -> BlockNode:
    """One node of a block: its spatial inputs, their (H, W) by `size`, and its outputs."""
    slots = set(local.spatial_inputs)
    inputs = tuple(t.name if i in slots else None for i, t in enumerate(node.inputs))
    in_sizes = tuple(size(t) if i in slots else None for i, t in enumerate(node.inputs))
    outs = [o for o in node.outputs if o.name]
    return BlockNode(
        node.name,
        node.op,
        local,
        inputs,
        tuple(o.name for o in node.outputs),
        in_sizes,
        hw(outs[0]),
    )


def backward(block: Block, axis: int, fused: Interval) -> AxisRegions:
    """Propagate an interval of F back through the block along one axis.

    Args:
        block: the block.
        axis: 0 for H, 1 for W.
        fused: the interval of F to compute.

    Returns:
        Every node's computed and read intervals and its tile pads.

    Raises:
        EmptyRegionError: some tile copy would read no real pixel.
    """
    need: dict[str, Interval] = {block.fused: fused}
    count = len(block.nodes)
    out: list[Interval | None] = [None] * count
    reads: list[tuple[Interval | None, ...]] = [()] * count
    pads: list[tuple[int, int]] = [(0, 0)] * count
    for i in range(count - 1, -1, -1):
        node = block.nodes[i]
        requested = None
        for o in node.outputs:
            if o in need:
                requested = need[o].union(requested)
        if requested is None:
            raise ValueError(f"block node {node.name} computes nothing F needs")
        step = node.local.axis(axis).backward
        slot_reads: list[Interval | None] = []
        for slot, tensor in enumerate(node.inputs):
            if tensor is None:
                slot_reads.append(None)
                continue
            read, pads[i], requested = step(requested, node.in_sizes[slot][axis])
            slot_reads.append(read)
            need[tensor] = read.union(need.get(tensor))
        out[i] = requested
        reads[i] = tuple(slot_reads)
    tensors = {block.input: need[block.input]}
    for i, node in enumerate(block.nodes):
        tensors.update({o: out[i] for o in node.outputs if o})
    out_sizes = np.array([interval.size for interval in out], float)
    tensor_sizes = np.array([tensors[t].size for t in block.tensors], float)
    spans = np.array([(tensors[t].start, tensors[t].stop) for t in block.tensors], np.int64)
    out_spans = np.array([(i.start, i.stop) for i in out], np.int64).reshape(-1, 2)
    return AxisRegions(
        tuple(out),
        tuple(reads),
        tuple(pads),
        tensors,
        fused,
        out_sizes,
        tensor_sizes,
        spans,
        out_spans,
    )


def uniform_bounds(size: int, parts: int) -> tuple[int, ...]:
    """The boundaries 0 = b0 < … < b_parts = size of `parts` intervals of [0, size) whose
    sizes differ by at most one (larger first)."""
    base, extra = divmod(size, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return tuple(bounds)


def split_axis(size: int, parts: int) -> tuple[Interval, ...]:
    """Split [0, size) into `parts` intervals whose sizes differ by at most one (larger first)."""
    return intervals(uniform_bounds(size, parts))


def intervals(bounds: tuple[int, ...]) -> tuple[Interval, ...]:
    """The intervals [b0, b1), [b1, b2), … between consecutive boundaries."""
    return tuple(Interval(a, b) for a, b in itertools.pairwise(bounds))


@dataclass(frozen=True)
class Tiling:
    """A block cut into an r×c grid of tiles of F, with each row's and column's regions.

    The tiles of a row share its height and those of a column its width; the rows (and the
    columns) may differ in size (`tiling_at`), or be equal splits (`make_tiling`).

    Attributes:
        block: the block.
        grid: (rows, columns).
        rows: the H-axis regions of each tile row.
        cols: the W-axis regions of each tile column.
    """

    block: Block
    grid: tuple[int, int]
    rows: tuple[AxisRegions, ...]
    cols: tuple[AxisRegions, ...]

    @property
    def num_paths(self) -> int:
        """P = rows · columns."""
        return self.grid[0] * self.grid[1]

    def axes(self, path: int) -> tuple[AxisRegions, AxisRegions]:
        """The (H, W) regions of `path`, counted row-major."""
        return self.rows[path // self.grid[1]], self.cols[path % self.grid[1]]

    @property
    def bounds(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The row and column boundaries of F: (0, …, H) and (0, …, W)."""
        return _bounds(self.rows), _bounds(self.cols)

    @property
    def uniform(self) -> bool:
        """Whether the tiles are equal splits of F (`uniform_bounds`) on both axes."""
        h, w = self.block.fused_shape[2], self.block.fused_shape[3]
        rows, cols = self.bounds
        return rows == uniform_bounds(h, self.grid[0]) and cols == uniform_bounds(w, self.grid[1])


def _bounds(regions: tuple[AxisRegions, ...]) -> tuple[int, ...]:
    return (regions[0].fused.start, *(r.fused.stop for r in regions))


AxisCache = dict[tuple[int, Interval], AxisRegions]


def make_tiling(block: Block, grid: tuple[int, int], cache: AxisCache | None = None) -> Tiling:
    """Analyse every tile of a uniform r×c grid of F (equal splits, `uniform_bounds`).

    Args:
        block: the block.
        grid: (rows, columns), each at most F's size on that axis.
        cache: optional memo of per-axis passes for this block, shared across grids.

    Returns:
        The tiling.

    Raises:
        EmptyRegionError: some tile would read only padding.
        ValueError: the grid is larger than F.
    """
    h, w = block.fused_shape[2], block.fused_shape[3]
    if not (1 <= grid[0] <= h and 1 <= grid[1] <= w):
        raise ValueError(f"grid {grid[0]}x{grid[1]} does not fit F of {h}x{w}")
    return tiling_at(block, uniform_bounds(h, grid[0]), uniform_bounds(w, grid[1]), cache)


def tiling_at(
    block: Block,
    row_bounds: tuple[int, ...],
    col_bounds: tuple[int, ...],
    cache: AxisCache | None = None,
) -> Tiling:
    """Analyse every tile of the grid of F with the given row and column boundaries.

    Args:
        block: the block.
        row_bounds: 0 = b0 < b1 < … < b_r = F's height: tile row i is [b_i, b_i+1).
        col_bounds: the same along F's width.
        cache: optional memo of per-axis passes for this block, shared across tilings.

    Returns:
        The tiling, with grid (r, c).

    Raises:
        EmptyRegionError: some tile would read only padding.
        ValueError: the boundaries do not cut F into non-empty intervals.
    """
    cache = {} if cache is None else cache

    def regions(axis: int, bounds: tuple[int, ...]) -> tuple[AxisRegions, ...]:
        size = block.fused_shape[2 + axis]
        ok = len(bounds) >= 2 and bounds[0] == 0 and bounds[-1] == size
        if not ok or any(a >= b for a, b in itertools.pairwise(bounds)):
            name = "row" if axis == 0 else "column"
            raise ValueError(f"{name} bounds {list(bounds)} do not cut [0, {size}) of F")
        result = []
        for interval in intervals(bounds):
            key = (axis, interval)
            if key not in cache:
                cache[key] = backward(block, axis, interval)
            result.append(cache[key])
        return tuple(result)

    rows, cols = regions(0, tuple(row_bounds)), regions(1, tuple(col_bounds))
    return Tiling(block, (len(rows), len(cols)), rows, cols)
