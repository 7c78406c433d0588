"""Emit a reuse plan: the device sends only new pieces, the edge reassembles each path's region.

    device: fl_p1_x ─ Slice ─ fl_p1_x_send0 ┐                       (only the new pixels)
                                            ├─ edge: Slice/Concat ─ fl_p1_x_held ─ rest of p1
    earlier path:      fl_p0_x ─────────────┘        (each cell from the piece that holds it)

For each path in run order and each tensor crossing its cut, the device slices the pieces
the plan sends (`flcompile.costs.reuse`) out of the path's tile; a piece that is the whole
tile is the tile itself. The edge rebuilds the path's region of the tensor from its own
pieces and the pieces earlier paths sent: the region's axes are compressed at every piece
boundary, each cell is taken from the first piece holding it (the path's own first), runs of
cells from one piece become one Slice, a row band is their Concat along W and the region
the Concat of the bands along H. Only Slice and Concat, so the region is bit-exact; every
edge-side reader of the tile then reads the rebuilt region. The new nodes are listed with
the path's crops, at -1 (device) or the block's length (edge), so placement finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import onnx_graphsurgeon as gs

from flcompile.costs.rects import Rect, cells
from flcompile.errors import InternalError
from flcompile.passes.placement import PathSplit, device_nodes
from flcompile.passes.receptive_field import Interval, Tiling
from flcompile.passes.split import split
from flcompile.passes.tile import TiledGraph, _slice, tile_graph, tile_tensor_name

# Per path in run order: (path, [(tensor name, the pieces it sends of it)]).
PieceSends = Sequence[tuple[int, Sequence[tuple[str, tuple[Rect, ...]]]]]


@dataclass(frozen=True)
class Piece:
    """A tensor on the edge holding one rectangle of a block tensor."""

    tensor: gs.Tensor
    rect: Rect


def _offsets(rect: Rect, origin: Rect) -> tuple[Interval, Interval]:
    """`rect` in the coordinates of a tensor whose region is `origin`."""
    return (
        Interval(rect[0] - origin[0], rect[1] - origin[0]),
        Interval(rect[2] - origin[2], rect[3] - origin[2]),
    )


class _Rewrite:
    """Adds the pieces and the reassembly of one plan to a tiled graph, path by path."""

    def __init__(self, tiled: TiledGraph, tiling: Tiling, cuts: Sequence[int]) -> None:
        self.tiled, self.tiling, self.cuts = tiled, tiling, cuts
        self.graph = tiled.graph
        self.tensors = self.graph.tensors()
        self.on_device = device_nodes(tiled, cuts)
        self.crops = [dict(c) for c in tiled.crops]
        self.nodes: list[gs.Node] = []
        self.new_names: set[str] = set()
        self.held: dict[str, list[Piece]] = {}

    def region(self, p: int, tensor: str) -> Rect:
        row, col = self.tiling.axes(p)
        h, w = row.tensors[tensor], col.tensors[tensor]
        return (h.start, h.stop, w.start, w.stop)

    def axes(self, tensor: str) -> tuple[int, int]:
        block = self.tiling.block
        return block.input_axes if tensor == block.input else (2, 3)

    def variable(self, name: str, tensor: str, rect: Rect) -> gs.Variable:
        like = self.tensors[tile_tensor_name(0, tensor)]  # every path's tile has its dtype
        shape = self.tiling.block.tile_shape(tensor, rect[1] - rect[0], rect[3] - rect[2])
        return gs.Variable(name, dtype=like.dtype, shape=shape)

    def add(self, p: int, node: gs.Node, feeds: int) -> None:
        self.nodes.append(node)
        self.new_names.add(node.name)
        self.crops[p][node.name] = feeds

    def send(self, p: int, tensor: str, pieces: tuple[Rect, ...]) -> list[str]:
        """Path p's pieces of `tensor`, rebuilt on the edge; returns the names it sends."""
        tile = self.tensors[tile_tensor_name(p, tensor)]
        region = self.region(p, tensor)
        if pieces == (region,):  # nothing held: the tile goes as it is
            self.held.setdefault(tensor, []).append(Piece(tile, region))
            return [tile.name]
        own = []
        for i, rect in enumerate(pieces):
            out = self.variable(piece_name(p, tensor, i, False), tensor, rect)
            name = f"{tensor}/p{p}/send{i}"
            offsets = _offsets(rect, region)
            self.add(p, _slice(tile, offsets, name, out, self.axes(tensor), self.graph.opset), -1)
            own.append(Piece(out, rect))
        rebuilt = self.assemble(p, tensor, region, own + self.held.get(tensor, []))
        self.rewire(tile, rebuilt)
        self.held.setdefault(tensor, []).extend(own)
        return [piece.tensor.name for piece in own]

    def assemble(self, p: int, tensor: str, region: Rect, sources: list[Piece]) -> gs.Tensor:
        """Slice/Concat nodes that rebuild `region` of `tensor` from `sources` (edge)."""
        rebuilt, _ = assemble_region(
            region,
            sources,
            prefix=f"{tensor}/p{p}/held",
            stem=f"{tile_tensor_name(p, tensor)}_held",
            variable=lambda name, rect: self.variable(name, tensor, rect),
            axes=self.axes(tensor),
            opset=self.graph.opset,
            add=lambda node: self.add(p, node, len(self.tiling.block.nodes)),
        )
        return rebuilt

    def rewire(self, tile: gs.Tensor, rebuilt: gs.Tensor) -> None:
        """Every edge-side reader of `tile` reads `rebuilt` instead."""
        for node in list(tile.outputs):
            if node.name in self.on_device or node.name in self.new_names:
                continue
            for i, t in enumerate(node.inputs):
                if t is tile:
                    node.inputs[i] = rebuilt


def assemble_region(
    region: Rect,
    sources: Sequence[Piece],
    *,
    prefix: str,
    stem: str,
    variable: Callable[[str, Rect], gs.Variable],
    axes: tuple[int, int],
    opset: int,
    add: Callable[[gs.Node], None],
) -> tuple[gs.Tensor, set[int]]:
    """Slice/Concat nodes that rebuild `region` of a tensor from pieces of it (`layout`).

    Args:
        region: the rectangle to rebuild.
        sources: pieces of the tensor, preferred first; together they hold the region.
        prefix: the new nodes' name prefix.
        stem: the new tensors' name prefix.
        variable: makes a tensor of the given name holding a rectangle of the tensor.
        axes: the tensor's (H, W) axes.
        opset: the graph's opset (the form of the Slices).
        add: takes each new node.

    Returns:
        The rebuilt tensor (a source itself where one is exactly the region) and the
        indices of the sources it reads.

    Raises:
        InternalError: some pixel of the region is in no source.
    """
    h_axis, w_axis = axes
    used: set[int] = set()

    def concat(parts: list[gs.Tensor], axis: int, name: str, rect: Rect) -> gs.Tensor:
        if len(parts) == 1:
            return parts[0]
        suffix = name.removeprefix(prefix).replace("/", "_")
        out = variable(f"{stem}{suffix}", rect)
        add(gs.Node("Concat", name=name, attrs={"axis": axis}, inputs=parts, outputs=[out]))
        return out

    bands = []
    for b, (band_rect, band_runs) in enumerate(layout(region, [s.rect for s in sources])):
        parts = []
        for n, (s, rect) in enumerate(band_runs):
            used.add(s)
            piece = sources[s]
            if rect == piece.rect:
                parts.append(piece.tensor)
                continue
            out = variable(f"{stem}_b{b}_{n}", rect)
            add(
                _slice(
                    piece.tensor, _offsets(rect, piece.rect), f"{prefix}/b{b}/{n}", out, axes, opset
                )
            )
            parts.append(out)
        bands.append(concat(parts, w_axis, f"{prefix}/b{b}", band_rect))
    return concat(bands, h_axis, prefix, region), used


def _first(sources: Sequence[Rect], h: int, w: int) -> int:
    """The first source holding pixel (h, w)."""
    for i, r in enumerate(sources):
        if r[0] <= h < r[1] and r[2] <= w < r[3]:
            return i
    raise InternalError(f"no piece holds pixel ({h}, {w}) of a reused region")


def _runs(row: list[int]) -> list[tuple[int, int, int]]:
    """Consecutive cells from the same source: (source, first column, last column + 1)."""
    runs: list[tuple[int, int, int]] = []
    for j, s in enumerate(row):
        if runs and runs[-1][0] == s:
            runs[-1] = (s, runs[-1][1], j + 1)
        else:
            runs.append((s, j, j + 1))
    return runs


Band = tuple[Rect, list[tuple[int, Rect]]]


def layout(region: Rect, sources: Sequence[Rect]) -> list[Band]:
    """How `region` is rebuilt from `sources`: row bands, each a run of rectangles along W.

    Args:
        region: the region to rebuild.
        sources: the pieces available, preferred first.

    Returns:
        Per band top to bottom, its rectangle and its runs left to right as (index of the
        source, rectangle); adjacent rows taking the same runs form one band.

    Raises:
        InternalError: some pixel of the region is in no source.
    """
    hs, ws = cells(region, sources)
    bands: list[tuple[int, int, list[tuple[int, int, int]]]] = []
    for i in range(len(hs) - 1):
        runs = _runs([_first(sources, hs[i], ws[j]) for j in range(len(ws) - 1)])
        if bands and bands[-1][2] == runs:
            bands[-1] = (bands[-1][0], i + 1, runs)
        else:
            bands.append((i, i + 1, runs))
    return [
        (
            (int(hs[i0]), int(hs[i1]), region[2], region[3]),
            [(s, (int(hs[i0]), int(hs[i1]), int(ws[j0]), int(ws[j1]))) for s, j0, j1 in runs],
        )
        for i0, i1, runs in bands
    ]


def piece_name(path: int, tensor: str, index: int, whole: bool) -> str:
    """The name a path sends a piece of `tensor` under: its tile's when the piece is whole."""
    tile = tile_tensor_name(path, tensor)
    return tile if whole else f"{tile}_send{index}"


def held_inputs(tiling: Tiling, sends: PieceSends) -> dict[int, tuple[str, ...]]:
    """Per path, the pieces of earlier paths that its rebuilt regions read.

    Args:
        tiling: the tiling (each path's regions).
        sends: per path in run order, the pieces it sends of each crossing tensor.

    Returns:
        path -> names of earlier paths' pieces, in first-use order.
    """
    held: dict[str, list[tuple[str, Rect]]] = {}
    result = {}
    for p, entries in sends:
        row, col = tiling.axes(p)
        used: list[str] = []
        for tensor, pieces in entries:
            h, w = row.tensors[tensor], col.tensors[tensor]
            region = (h.start, h.stop, w.start, w.stop)
            whole = pieces == (region,)
            own = [(piece_name(p, tensor, i, whole), r) for i, r in enumerate(pieces)]
            earlier = held.setdefault(tensor, [])
            if not whole:
                sources = own + earlier
                for band in layout(region, [r for _, r in sources]):
                    used += [sources[s][0] for s, _ in band[1] if s >= len(own)]
            earlier.extend(own)
        result[p] = tuple(dict.fromkeys(used))
    return result


@dataclass(frozen=True, eq=False)
class ReuseSplit(PathSplit):
    """A `PathSplit` of a reuse plan.

    Attributes:
        held: per path, the earlier paths' pieces its edge part reads.
    """

    held: dict[int, tuple[str, ...]] | None = None


def reuse_tile_and_split(
    graph: gs.Graph, tiling: Tiling, cuts: Sequence[int], order: Sequence[int], sends: PieceSends
) -> ReuseSplit:
    """Tile `graph` (in place), add the plan's pieces and reassembly, and split it.

    Args:
        graph: the normalized graph the tiling was made for.
        tiling: the block, grid and regions.
        cuts: the cut of each path, indexed by path.
        order: path indices in run order.
        sends: per path in run order, the pieces it sends of each crossing tensor.

    Returns:
        The tiled graph (with the new nodes), the sends, the two parts and each path's held
        inputs.

    Raises:
        InternalError: the sends do not follow `order`, or a region cannot be rebuilt.
    """
    tiled = tile_graph(graph, tiling)
    rewrite = _Rewrite(tiled, tiling, cuts)
    path_sends = []
    for (p, entries), q in zip(sends, order, strict=True):
        if p != q:
            raise InternalError(f"reuse sends are for path {p} where the order runs {q}")
        names = [n for tensor, pieces in entries for n in rewrite.send(p, tensor, pieces)]
        path_sends.append((p, names))
    graph.nodes.extend(rewrite.nodes)
    graph.toposort()
    tiled = replace(tiled, crops=tuple(rewrite.crops))
    flat = [name for _, names in path_sends for name in names]
    device, edge = split(graph, device_nodes(tiled, cuts), flat)
    return ReuseSplit(tiled, path_sends, device, edge, held_inputs(tiling, sends))
