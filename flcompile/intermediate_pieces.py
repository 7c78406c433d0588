"""Emit an intermediate-reuse plan: each path computes only what no earlier path computed.

    device: x ─ Slice ─ fl_p1_x_send0                     (the new pixels of the input)
    edge:   pieces of t held ─ Slice/Concat ─ node copy ─ fl_p1_t_new0 ─ …
            pieces of F ─ Slice/Concat ─ fl_p1_F ─ fuse

Every path is cut at the raw input: its device part slices the new pieces of the input
(`ComputedPieces.sends`). On the edge, for each block node in block order and each
rectangle the path computes of it (`ComputedPieces.rects`), the rectangle's inputs are
rebuilt from the pieces of the input tensors held so far (any path's, `assemble_region`),
and one copy of the node computes it, with the pads the rectangle needs along each axis
(the same axis maps and op rules as a tile copy, so it is exact). The path's tile of F is
rebuilt from the pieces of F, and the fuse joins the tiles as in a tiled graph. Node names
are `{node}/p{p}/new{k}`, pieces `fl_p{p}_{tensor}_new{k}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from flcompile.costs.intermediate import ComputedPieces
from flcompile.costs.rects import Rect
from flcompile.errors import InternalError
from flcompile.passes.ops import OpRule, rule_for
from flcompile.passes.ops.axes import Interval
from flcompile.passes.receptive_field import BlockNode, Tiling
from flcompile.passes.split import split
from flcompile.passes.tile import TiledGraph, _fuse, _slice, tile_tensor_name
from flcompile.reuse_pieces import Piece, assemble_region, layout, piece_name


@dataclass(frozen=True, eq=False)
class IntermediateSplit:
    """The rewritten graph of an intermediate-reuse plan and its device and edge parts.

    Attributes:
        tiled: the rewritten graph (`copies` and `crops` are empty: `placement` says where
            each node runs).
        sends: per path in run order, the names of the pieces it sends.
        device: the device graph.
        edge: the edge graph.
        placement: node name -> ("device" | "edge", path index as text or "").
        held: per path, what earlier paths sent or computed that its edge part reads.
        keeps: per path, what its edge part computes that later paths read.
    """

    tiled: TiledGraph
    sends: list[tuple[int, list[str]]]
    device: gs.Graph
    edge: gs.Graph
    placement: dict[str, tuple[str, str]]
    held: dict[int, tuple[str, ...]]
    keeps: dict[int, tuple[str, ...]]


class _Rewrite:
    """Builds the pieces, the node copies and the tiles of F of one plan, path by path."""

    def __init__(self, graph: gs.Graph, tiling: Tiling) -> None:
        self.graph, self.tiling, self.block = graph, tiling, tiling.block
        self.tensors = graph.tensors()
        self.nodes: list[gs.Node] = []
        self.placement: dict[str, tuple[str, str]] = {}
        self.pieces: dict[str, list[Piece]] = {}  # every piece on the edge, in making order

    def add(self, node: gs.Node, where: str, p: int) -> None:
        self.nodes.append(node)
        self.placement[node.name] = (where, str(p))

    def variable(self, name: str, tensor: str, rect: Rect) -> gs.Variable:
        shape = self.block.tile_shape(tensor, rect[1] - rect[0], rect[3] - rect[2])
        return gs.Variable(name, dtype=self.tensors[tensor].dtype, shape=shape)

    def axes(self, tensor: str) -> tuple[int, int]:
        return self.block.input_axes if tensor == self.block.input else (2, 3)

    def send(self, p: int, region: Rect, rects: tuple[Rect, ...]) -> list[str]:
        """Path p's device part: Slice its new pieces out of the input; returns their names."""
        x = self.block.input
        names = []
        for i, rect in enumerate(rects):
            name = piece_name(p, x, i, rects == (region,))
            out = self.variable(name, x, rect)
            interval = (Interval(rect[0], rect[1]), Interval(rect[2], rect[3]))
            slicer = f"{x}/p{p}/send{i}"
            node = _slice(self.tensors[x], interval, slicer, out, self.axes(x), self.graph.opset)
            self.add(node, "device", p)
            self.pieces.setdefault(x, []).append(Piece(out, rect))
            names.append(name)
        return names

    def region(self, p: int, tensor: str, rect: Rect, purpose: str, stem: str) -> gs.Tensor:
        """`rect` of `tensor` on the edge for path p, rebuilt from every piece held."""
        rebuilt, _ = assemble_region(
            rect,
            self.pieces.get(tensor, []),
            prefix=purpose,
            stem=stem,
            variable=lambda name, r: self.variable(name, tensor, r),
            axes=self.axes(tensor),
            opset=self.graph.opset,
            add=lambda node: self.add(node, "edge", p),
        )
        return rebuilt

    def compute(self, p: int, node: gs.Node, bn: BlockNode, rects: tuple[Rect, ...]) -> None:
        """Path p's copies of one block node, one per rectangle it computes."""
        rule = rule_for(node.op) or OpRule()  # the NHWC input's Transpose has none
        for k, rect in enumerate(rects):
            name = f"{node.name}/p{p}/new{k}"
            steps = [_steps(bn, axis, rect) for axis in (0, 1)]
            (h_pads, h_out), (w_pads, w_out) = ((s[0], s[1]) for s in steps)
            attrs, inputs = rule.tile(node, h_pads, w_pads, p)
            _rename_new_constants(node, inputs, f"{name}/")
            for slot, tensor in enumerate(bn.inputs):
                if tensor is None:
                    continue
                h_read, w_read = steps[0][2][slot], steps[1][2][slot]
                read = (h_read.start, h_read.stop, w_read.start, w_read.stop)
                stem = f"{tile_tensor_name(p, tensor)}_for_{node.name}_new{k}_{slot}"
                inputs[slot] = self.region(p, tensor, read, f"{name}/in{slot}", stem)
            computed = (h_out.start, h_out.stop, w_out.start, w_out.stop)
            outputs = []
            for out in node.outputs:
                if not out.name:
                    outputs.append(gs.Variable.empty())
                    continue
                piece = self.variable(f"{tile_tensor_name(p, out.name)}_new{k}", out.name, computed)
                outputs.append(piece)
                self.pieces.setdefault(out.name, []).append(Piece(piece, computed))
            copy = gs.Node(
                node.op, name=name, attrs=attrs, inputs=inputs, outputs=outputs, domain=node.domain
            )
            self.add(copy, "edge", p)

    def tile(self, p: int) -> gs.Tensor:
        """Path p's tile of F, rebuilt from the pieces of F, named as in a tiled graph."""
        row, col = self.tiling.axes(p)
        fused = self.block.fused
        rect = (row.fused.start, row.fused.stop, col.fused.start, col.fused.stop)
        name = tile_tensor_name(p, fused)
        tile = self.region(p, fused, rect, f"fl_fuse/p{p}/tile", f"{name}_from")
        if any(piece.tensor is tile for piece in self.pieces.get(fused, [])):
            out = self.variable(name, fused, rect)  # a piece is exactly the tile: name it
            self.add(
                gs.Node("Identity", name=f"fl_fuse/p{p}/tile", inputs=[tile], outputs=[out]),
                "edge",
                p,
            )
            return out
        tile.name = name
        return tile


def _steps(bn: BlockNode, axis: int, rect: Rect) -> tuple[tuple[int, int], Interval, list]:
    """Along one axis: the pads, the output interval computed and each slot's read interval
    of a copy of `bn` asked for `rect`."""
    want = Interval(rect[0], rect[1]) if axis == 0 else Interval(rect[2], rect[3])
    step = bn.local.axis(axis).backward
    pads, out, reads = (0, 0), want, []
    for slot, tensor in enumerate(bn.inputs):
        if tensor is None:
            reads.append(None)
            continue
        read, pads, out = step(want, bn.in_sizes[slot][axis])
        reads.append(read)
    return pads, out, reads


def _rename_new_constants(node: gs.Node, inputs: list[gs.Tensor], prefix: str) -> None:
    """Give the constants an op rule made for a copy (a Pad's pads) names of this copy's own,
    so two copies of one node in one path do not clash."""
    originals = {id(t) for t in node.inputs}
    for tensor in inputs:
        if isinstance(tensor, gs.Constant) and id(tensor) not in originals:
            tensor.name = prefix + tensor.name.rsplit("/", 1)[-1]


def intermediate_split(
    graph: gs.Graph, tiling: Tiling, computed: ComputedPieces
) -> IntermediateSplit:
    """Rewrite `graph` (in place) for an intermediate-reuse plan and split it.

    Args:
        graph: the normalized graph the tiling was made for.
        tiling: the block, grid and regions.
        computed: the run order, what each path sends of the input and computes of each node.

    Returns:
        The rewritten graph, the sends, the two parts, where each node runs, and what each
        path's edge part reads from earlier paths and keeps for later ones.

    Raises:
        InternalError: the graph lacks the block, or a region cannot be rebuilt.
    """
    block = tiling.block
    by_name = {n.name: n for n in graph.nodes}
    try:
        originals = [by_name[bn.name] for bn in block.nodes]
    except KeyError as e:
        raise InternalError(f"the graph lacks block node {e}") from e
    rewrite = _Rewrite(graph, tiling)
    sends, tiles = [], [None] * tiling.num_paths
    for p in computed.order:
        row, col = tiling.axes(p)
        x_h, x_w = row.tensors[block.input], col.tensors[block.input]
        region = (x_h.start, x_h.stop, x_w.start, x_w.stop)
        sends.append((p, rewrite.send(p, region, computed.sends[p])))
        for n, (bn, node) in enumerate(zip(block.nodes, originals, strict=True)):
            rewrite.compute(p, node, bn, computed.rects(p, n))
        tiles[p] = rewrite.tile(p)
    fused = rewrite.tensors[block.fused]
    for node in originals:
        node.outputs.clear()
        node.inputs.clear()
    fuse_nodes = _fuse(tiles, tiling.grid, fused, rewrite.nodes)
    graph.nodes = [n for n in graph.nodes if n.inputs or n.outputs] + rewrite.nodes
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    placement = {n.name: rewrite.placement.get(n.name, ("edge", "")) for n in graph.nodes}
    on_device = {name for name, (where, _) in placement.items() if where == "device"}
    flat = [name for _, names in sends for name in names]
    device, edge = split(graph, on_device, flat)
    tiled = TiledGraph(graph, (), (), (), fuse_nodes)
    held, keeps = piece_reads(tiling, computed)
    return IntermediateSplit(tiled, sends, device, edge, placement, held, keeps)


def piece_reads(
    tiling: Tiling, computed: ComputedPieces
) -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[str, ...]]]:
    """What each path's edge part reads of earlier paths' pieces, and keeps for later ones.

    The rewrite's own bookkeeping, on rectangles and names alone: the pieces of each tensor
    in the order the rewrite makes them, each read rebuilt by `layout` from all of them.

    Args:
        tiling: the tiling.
        computed: the run order and what each path sends and computes.

    Returns:
        (held, keeps): per path, the names of earlier paths' pieces (sent or computed) its
        edge part reads, and of its computed pieces later paths read; in first-use order.
    """
    block = tiling.block
    made: dict[str, list[tuple[str, Rect, int, bool]]] = {}  # name, rect, path, sent
    held: dict[int, list[str]] = {p: [] for p in computed.order}
    keeps: dict[int, list[str]] = {p: [] for p in computed.order}

    def read(p: int, tensor: str, rect: Rect) -> None:
        sources = made.get(tensor, [])
        for band in layout(rect, [s[1] for s in sources]):
            for index, _ in band[1]:
                name, _, owner, sent = sources[index]
                if owner != p:
                    held[p].append(name)
                    if not sent:
                        keeps[owner].append(name)

    for p in computed.order:
        row, col = tiling.axes(p)
        x_h, x_w = row.tensors[block.input], col.tensors[block.input]
        whole = computed.sends[p] == ((x_h.start, x_h.stop, x_w.start, x_w.stop),)
        for i, rect in enumerate(computed.sends[p]):
            made.setdefault(block.input, []).append(
                (piece_name(p, block.input, i, whole), rect, p, True)
            )
        for n, bn in enumerate(block.nodes):
            for k, rect in enumerate(computed.rects(p, n)):
                steps = [_steps(bn, axis, rect) for axis in (0, 1)]
                for slot, tensor in enumerate(bn.inputs):
                    if tensor is not None:
                        h, w = steps[0][2][slot], steps[1][2][slot]
                        read(p, tensor, (h.start, h.stop, w.start, w.stop))
                h, w = steps[0][1], steps[1][1]
                for out in bn.outputs:
                    if out:
                        name = f"{tile_tensor_name(p, out)}_new{k}"
                        made.setdefault(out, []).append(
                            (name, (h.start, h.stop, w.start, w.stop), p, False)
                        )
        read(p, block.fused, (row.fused.start, row.fused.stop, col.fused.start, col.fused.stop))
    unique = lambda names: {p: tuple(dict.fromkeys(v)) for p, v in names.items()}  # noqa: E731
    return unique(held), unique(keeps)
