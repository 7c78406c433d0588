"""Tile rewrite: replace the block that computes F by P path copies and a Concat fuse.

    x ─ block ─ F ─ rest        becomes
    x ─ Slice ─ block/p0 ─┐
    x ─ Slice ─ block/p1 ─┼─ Concat(W) per row ─ Concat(H) ─ F ─ rest
    ...                   ┘

Each copy of a node computes its path's region only and gets that tile's pads (zero at
interior borders), so the fused F is bit-identical to the original. Weights are the same
Constant objects in every copy and are exported once. Derived names are traceable: node
`{node}/p{p}`, tensor `fl_p{p}_{tensor}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.errors import InternalError
from flcompile.passes.ops import OpRule, rule_for
from flcompile.passes.receptive_field import AxisRegions, BlockNode, Interval, Tiling


@dataclass(frozen=True)
class TiledGraph:
    """The rewritten graph and where each path's pieces sit in it.

    Attributes:
        graph: the graph with the block replaced by paths and the fuse.
        input_slices: per path, the name of the Slice node that cuts its input tile.
        copies: per path, the names of the copies of the block's nodes, in block order.
        crops: per path, {crop node name: index of the block node it feeds, or len(block) for
            the fuse}.
        fuse_nodes: names of the Concat (or Identity) nodes that rebuild F.
    """

    graph: gs.Graph
    input_slices: tuple[str, ...]
    copies: tuple[tuple[str, ...], ...]
    crops: tuple[dict[str, int], ...]
    fuse_nodes: tuple[str, ...]


SLICE_INPUTS_OPSET = 10  # Slice takes starts/ends/axes as inputs from opset 10 on


def tile_tensor_name(path: int, tensor: str) -> str:
    """The name of path `path`'s copy of `tensor`."""
    return f"fl_p{path}_{tensor}"


def _ints(values: list[int], name: str) -> gs.Constant:
    return gs.Constant(name, np.asarray(values, dtype=np.int64))


def _slice(
    source: gs.Tensor,
    region: tuple[Interval, Interval],
    name: str,
    output: gs.Variable,
    axes: tuple[int, int] = (2, 3),
    opset: int = 13,
) -> gs.Node:
    """Slice `region` out of `source`; Slice-1 (opset < 10) takes attributes, not inputs."""
    (h, w) = region
    starts, ends = [h.start, w.start], [h.stop, w.stop]
    if opset < SLICE_INPUTS_OPSET:
        attrs = {"starts": starts, "ends": ends, "axes": list(axes)}
        return gs.Node("Slice", name=name, attrs=attrs, inputs=[source], outputs=[output])
    inputs = [
        source,
        _ints(starts, f"{name}/starts"),
        _ints(ends, f"{name}/ends"),
        _ints(list(axes), f"{name}/axes"),
    ]
    return gs.Node("Slice", name=name, inputs=inputs, outputs=[output])


def _variable(name: str, like: gs.Tensor, region: tuple[Interval, Interval]) -> gs.Variable:
    shape = (like.shape[0], like.shape[1], region[0].size, region[1].size)
    return gs.Variable(name, dtype=like.dtype, shape=shape)


def _region(row: AxisRegions, col: AxisRegions, tensor: str) -> tuple[Interval, Interval]:
    return row.tensors[tensor], col.tensors[tensor]


def _crop_offsets(
    have: tuple[Interval, Interval], want: tuple[Interval, Interval]
) -> tuple[Interval, Interval]:
    return tuple(
        Interval(w.start - h.start, w.stop - h.start) for h, w in zip(have, want, strict=True)
    )  # type: ignore[return-value]


class PathBuilder:
    """Builds one path's copies: owns the path's map from block tensor names to its tiles.

    Args:
        path: the path's index.
        row: its H-axis regions.
        col: its W-axis regions.
        tensors: the graph's tensors by name.
        opset: the graph's opset (the form of its Slices).
    """

    def __init__(
        self,
        path: int,
        row: AxisRegions,
        col: AxisRegions,
        tensors: dict[str, gs.Tensor],
        opset: int,
    ) -> None:
        self.path, self.row, self.col = path, row, col
        self.tensors, self.opset = tensors, opset
        self.nodes: list[gs.Node] = []
        self.current: dict[str, gs.Tensor] = {}
        self.crops: dict[str, int] = {}
        self.crop_outputs: dict[str, gs.Variable] = {}

    def region(self, tensor: str) -> tuple[Interval, Interval]:
        """The (H, W) region of `tensor` that this path computes."""
        return _region(self.row, self.col, tensor)

    def slice_input(self, x: gs.Tensor, axes: tuple[int, int]) -> str:
        """Cut this path's tile out of the block input `x`; return the Slice's name."""
        region = self.region(x.name)
        shape = list(x.shape)
        shape[axes[0]], shape[axes[1]] = (r.size for r in region)
        tile = gs.Variable(tile_tensor_name(self.path, x.name), dtype=x.dtype, shape=shape)
        name = f"{x.name}/p{self.path}/slice"
        self.nodes.append(_slice(x, region, name, tile, axes, self.opset))
        self.current[x.name] = tile
        return name

    def source(
        self, tensor: str, want: tuple[Interval, Interval], consumer: str, index: int
    ) -> gs.Tensor:
        """This path's tile of `tensor`, cropped to `want` for block node `index` if larger."""
        have = self.region(tensor)
        if have == want:
            return self.current[tensor]
        name = f"{consumer}/p{self.path}/crop_{tensor}"
        if name in self.crop_outputs:  # a node reading one tensor twice, e.g. Add(t, t)
            return self.crop_outputs[name]
        like = self.tensors[tensor]
        out = _variable(f"{tile_tensor_name(self.path, tensor)}_crop_for_{consumer}", like, want)
        offsets = _crop_offsets(have, want)
        self.nodes.append(_slice(self.current[tensor], offsets, name, out, opset=self.opset))
        self.crops[name] = index
        self.crop_outputs[name] = out
        return out

    def copy(self, node: gs.Node, bn: BlockNode, index: int) -> str:
        """Append this path's copy of block node `index`; return the copy's name."""
        p, row, col = self.path, self.row, self.col
        rule = rule_for(node.op) or OpRule()  # the NHWC input's Transpose has none: kept as is
        attrs, inputs = rule.tile(node, row.pads[index], col.pads[index], p)
        for slot, tensor in enumerate(bn.inputs):
            if tensor is None:
                continue
            want = (row.reads[index][slot], col.reads[index][slot])
            inputs[slot] = self.source(tensor, want, node.name, index)
        outputs = []
        for out in node.outputs:
            if not out.name:
                outputs.append(gs.Variable.empty())
                continue
            like = self.tensors[out.name]
            tile = _variable(tile_tensor_name(p, out.name), like, self.region(out.name))
            outputs.append(tile)
            self.current[out.name] = tile
        name = f"{node.name}/p{p}"
        self.nodes.append(
            gs.Node(
                node.op, name=name, attrs=attrs, inputs=inputs, outputs=outputs, domain=node.domain
            )
        )
        return name


def tile_graph(graph: gs.Graph, tiling: Tiling) -> TiledGraph:
    """Rewrite `graph` in place: the block becomes `tiling`'s paths plus the fuse.

    Args:
        graph: the normalized graph the tiling was made for.
        tiling: the block, grid and per-tile regions.

    Returns:
        The rewritten graph and the names of each path's nodes.

    Raises:
        InternalError: the graph does not hold the block the tiling describes.
    """
    block = tiling.block
    tensors = graph.tensors()
    by_name = {n.name: n for n in graph.nodes}
    try:
        originals = [by_name[bn.name] for bn in block.nodes]
        x, fused = tensors[block.input], tensors[block.fused]
    except KeyError as e:
        raise InternalError(f"the graph lacks block node or tensor {e}") from e

    new_nodes: list[gs.Node] = []
    slices, copies, crops = [], [], []
    f_tiles: list[gs.Tensor] = []
    for p in range(tiling.num_paths):
        row, col = tiling.axes(p)
        builder = PathBuilder(p, row, col, tensors, graph.opset)
        slices.append(builder.slice_input(x, block.input_axes))
        names = [
            builder.copy(node, bn, i)
            for i, (bn, node) in enumerate(zip(block.nodes, originals, strict=True))
        ]
        want_f = (row.fused, col.fused)
        f_tiles.append(builder.source(block.fused, want_f, "fl_fuse", len(block.nodes)))
        new_nodes.extend(builder.nodes)
        copies.append(tuple(names))
        crops.append(builder.crops)

    for node in originals:
        node.outputs.clear()
        node.inputs.clear()
    fuse_nodes = _fuse(f_tiles, tiling.grid, fused, new_nodes)
    graph.nodes = [n for n in graph.nodes if n.inputs or n.outputs] + new_nodes
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return TiledGraph(graph, tuple(slices), tuple(copies), tuple(crops), fuse_nodes)


def _fuse(
    tiles: list[gs.Tensor], grid: tuple[int, int], fused: gs.Variable, new_nodes
) -> tuple[str, ...]:
    """Concat the tiles along W within each row, then the rows along H, into `fused`."""
    rows, cols = grid
    names = []
    if rows * cols == 1:
        new_nodes.append(gs.Node("Identity", name="fl_fuse", inputs=[tiles[0]], outputs=[fused]))
        return ("fl_fuse",)
    row_tensors = []
    for r in range(rows):
        members = tiles[r * cols : (r + 1) * cols]
        if cols == 1:
            row_tensors.append(members[0])
            continue
        if rows == 1:
            out = fused
        else:
            width = sum(t.shape[3] for t in members)
            shape = (fused.shape[0], fused.shape[1], members[0].shape[2], width)
            out = gs.Variable(f"fl_fuse_row{r}", dtype=fused.dtype, shape=shape)
        name = f"fl_fuse/row{r}" if rows > 1 else "fl_fuse"
        new_nodes.append(
            gs.Node("Concat", name=name, attrs={"axis": 3}, inputs=members, outputs=[out])
        )
        names.append(name)
        row_tensors.append(out)
    if rows > 1:
        new_nodes.append(
            gs.Node(
                "Concat", name="fl_fuse", attrs={"axis": 2}, inputs=row_tensors, outputs=[fused]
            )
        )
        names.append("fl_fuse")
    return tuple(names)


def fuse_node_count(grid: tuple[int, int]) -> int:
    """How many nodes `_fuse` adds for an r×c grid: a Concat per row of several tiles and
    one over several rows, or a lone Identity for 1×1."""
    rows, cols = grid
    return max((rows if cols > 1 else 0) + (1 if rows > 1 else 0), 1)
