"""Intermediate reuse: the edge keeps what it computed, so each path computes only what is new.

Under edge-side reuse (`flcompile.costs.reuse`) a path sends only the pixels the edge does
not hold, but the edge still computes the path's whole region of every block node, halos
included. With intermediate reuse (DeepThings' data reuse) the edge also keeps every piece
of every block tensor it has computed for the frame: path p computes, for each block node,
only the part of its region of the node's output that no earlier path (in run order)
computed, as at most two rectangles (`flcompile.costs.rects.new_cover`, the same cover the
sends use). Every pixel a new rectangle reads lies in the path's own region of the input
tensor, which the earlier paths' pieces and the path's own cover, so the path's edge part
can always be assembled (docs/design.md §4).

Plans of this kind cut every path at the raw input (the device only slices out the new
pixels of the input) and run the paths in a scan order of the grid (`scan_orders`); a
path's edge part reads what earlier paths' edge parts computed, so the edge parts run one
after another in run order, whatever the edge's concurrency: the simulator scores them on
a serial edge, which is the schedule the server runs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flcompile.costs.node_cost import ComputeModel, node_work
from flcompile.costs.rects import Rect, new_cover, rect_area
from flcompile.costs.tiles import TileCosts
from flcompile.passes.receptive_field import Tiling

# At most this many rectangles per path and node (`new_cover`'s bound).
MAX_PIECES = 2


SCAN_ORDERS = ("row-major", "snake", "column-major", "column snake")


@functools.lru_cache(maxsize=1024)
def scan_order(grid: tuple[int, int], name: str) -> tuple[int, ...]:
    """One scan of an r×c grid (paths numbered row-major) by name: row-major, column-major,
    or the snake (boustrophedon) of either."""
    rows, cols = grid
    index = np.arange(rows * cols).reshape(rows, cols)
    if name.startswith("column"):
        index = index.T.copy()
    if name.endswith("snake"):
        index[1::2] = index[1::2, ::-1]
    return tuple(int(p) for p in index.reshape(-1))


def scan_orders(grid: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """The distinct scan orders of an r×c grid, by name (first name wins on a tie)."""
    distinct: dict[tuple[int, ...], str] = {}
    for name in SCAN_ORDERS:
        distinct.setdefault(scan_order(grid, name), name)
    return {name: order for order, name in distinct.items()}


def node_regions(tiling: Tiling) -> list[list[Rect]]:
    """[node][path] each path's region (h0, h1, w0, w1) of each block node's output: what
    its copy computes under independent paths (the receptive-field analysis' `out`)."""
    axes = [tiling.axes(p) for p in range(tiling.num_paths)]
    return [
        [(h.out[n].start, h.out[n].stop, w.out[n].start, w.out[n].stop) for h, w in axes]
        for n in range(len(tiling.block.nodes))
    ]


@dataclass(frozen=True, eq=False)
class ComputedPieces:
    """What each path's edge part computes under intermediate reuse, for one run order.

    Attributes:
        order: path indices in run order.
        boxes: (P, L, MAX_PIECES, 4) int, by path index, the rectangles (h0, h1, w0, w1)
            of each node's output the path computes; an empty one (h0 >= h1 or w0 >= w1)
            is no rectangle, and a node with none ran in earlier paths only.
        region_pixels: (P, L) output pixels of each path's whole region of each node (what
            its copy computes without intermediate reuse).
        send_boxes: (P, MAX_PIECES, 4) int, by path index, the rectangles of the block input
            it sends (`sends`), empty ones as in `boxes`.
    """

    order: tuple[int, ...]
    boxes: np.ndarray
    region_pixels: np.ndarray
    send_boxes: np.ndarray

    @functools.cached_property
    def sends(self) -> tuple[tuple[Rect, ...], ...]:
        """By path index, the rectangles of the block input it sends: its region less what
        earlier paths sent (edge-side reuse at the raw-input cut)."""
        return tuple(_rects(boxes) for boxes in self.send_boxes)

    def sent_pixels(self) -> np.ndarray:
        """(P,) pixels of the block input each path sends."""
        return _areas(self.send_boxes).sum(axis=1)

    def slot_pixels(self) -> np.ndarray:
        """(P, L, MAX_PIECES) pixels of each rectangle (0 where there is none)."""
        return _areas(self.boxes)

    def shares(self) -> np.ndarray:
        """(P, L, MAX_PIECES) each rectangle's share of its path's whole region of the node."""
        region = np.broadcast_to(self.region_pixels[..., None], self.boxes.shape[:3])
        slots = self.slot_pixels()
        return np.divide(slots, region, out=np.zeros_like(slots), where=region > 0)

    def flops(self, costs: TileCosts) -> np.ndarray:
        """(P, L) FLOPs each path computes of each node: its copy's, scaled by `shares`."""
        return costs.flops * self.shares().sum(axis=2)

    def rects(self, path: int, node: int) -> tuple[Rect, ...]:
        """The rectangles path `path` computes of node `node`'s output, in order."""
        return _rects(self.boxes[path, node])


def _areas(boxes: np.ndarray) -> np.ndarray:
    """Pixels of each (..., 4) box, 0 for an empty one."""
    h = np.clip(boxes[..., 1] - boxes[..., 0], 0, None)
    w = np.clip(boxes[..., 3] - boxes[..., 2], 0, None)
    return (h * w).astype(float)


def _rects(boxes: np.ndarray) -> tuple[Rect, ...]:
    """The non-empty boxes of a (K, 4) array, as rectangles in order."""
    return tuple((int(a), int(b), int(c), int(d)) for a, b, c, d in boxes if a < b and c < d)


def _boxes(rects: Sequence[Sequence[Rect]], shape: tuple[int, ...]) -> np.ndarray:
    """(*shape, MAX_PIECES, 4) from nested rectangle lists of that shape (the rest empty)."""
    boxes = np.zeros((*shape, MAX_PIECES, 4), np.int64)
    for index in np.ndindex(*shape):
        entry = rects
        for i in index:
            entry = entry[i]
        for k, rect in enumerate(entry):
            boxes[(*index, k)] = rect
    return boxes


def computed_pieces(tiling: Tiling, order: Sequence[int]) -> ComputedPieces:
    """The rectangles each path computes of each block node when the edge keeps its results.

    Any order: each path's new part of each node is `new_cover` of its region less the
    earlier paths' regions (at most two rectangles, which may recompute some pixels).

    Args:
        tiling: the tiling.
        order: path indices in run order.

    Returns:
        The pieces, by path.
    """
    order = tuple(int(p) for p in order)
    regions = node_regions(tiling)
    rects: list[list[tuple[Rect, ...]]] = [[] for _ in range(tiling.num_paths)]
    for node in regions:
        for j, p in enumerate(order):
            rects[p].append(new_cover(node[p], [node[q] for q in order[:j]]))
    area = np.array([[rect_area(node[p]) for node in regions] for p in range(tiling.num_paths)])
    block_input = tiling.block.input
    inputs = [
        (h.tensors[block_input], w.tensors[block_input])
        for h, w in (tiling.axes(p) for p in range(tiling.num_paths))
    ]
    regions_in = [(h.start, h.stop, w.start, w.stop) for h, w in inputs]
    sends: list[tuple[Rect, ...]] = [()] * tiling.num_paths
    for j, p in enumerate(order):
        sends[p] = new_cover(regions_in[p], [regions_in[q] for q in order[:j]])
    boxes = _boxes(rects, (tiling.num_paths, len(regions)))
    return ComputedPieces(order, boxes, area.astype(float), _boxes(sends, (tiling.num_paths,)))


def _spans(regions: tuple) -> np.ndarray:
    """(tiles on the axis, L, 2) each tile row's (or column's) output span of every node."""
    return np.stack([axis.out_spans for axis in regions])


def _union_lengths(spans: np.ndarray) -> np.ndarray:
    """(X,) along one axis, the length of the union of the tiles' spans (tiles on the axis,
    X, 2) of each of X tensors (a grid's spans grow monotonically along an axis)."""
    previous = np.concatenate([spans[:1, :, 0], spans[:-1, :, 1]])
    return np.clip(spans[:, :, 1] - np.maximum(spans[:, :, 0], previous), 0, None).sum(axis=0)


def input_union_pixels(tiling: Tiling) -> int:
    """Pixels of the block input that some tile reads: what any order sends of it at the
    raw-input cut under edge-side reuse (a grid's regions are rows × columns)."""
    rows, cols = _input_spans(tiling.rows), _input_spans(tiling.cols)
    return int(_union_lengths(rows)[0] * _union_lengths(cols)[0])


def scan_edge_floor_s(tiling: Tiling, costs: TileCosts, compute: ComputeModel) -> float:
    """A floor on the edge seconds of all paths together in any scan order.

    In a scan the paths compute each node's union of regions exactly once between them, so
    their FLOPs add up to the union's; their activation bytes to at least the union's
    pixels at the fewest bytes per pixel of any path. Without per-node overheads (and
    laws' intercepts), which only add, that is a floor on `intermediate_edge_s`'s sum.
    """
    union = _union_lengths(_spans(tiling.rows)) * _union_lengths(_spans(tiling.cols))
    region = _region_pixels(tiling)
    flops = (costs.flops / region).min(axis=0) * union  # the same per pixel on every path
    nbytes = None if costs.node_bytes is None else (costs.node_bytes / region).min(axis=0) * union
    work = node_work(costs.keys, flops[None], None if nbytes is None else nbytes[None])
    return float(compute.without_overheads().edge_nodes_s(work).sum())


def _region_pixels(tiling: Tiling) -> np.ndarray:
    """(P, L) output pixels of each path's whole region of each node, paths row-major."""
    rows, cols = _spans(tiling.rows), _spans(tiling.cols)
    heights = (rows[:, :, 1] - rows[:, :, 0])[:, None, :]
    widths = (cols[:, :, 1] - cols[:, :, 0])[None, :, :]
    return (heights * widths).reshape(tiling.num_paths, -1).astype(float)


def _fresh(spans: np.ndarray, backward: bool) -> np.ndarray:
    """Per tile on one axis, the part of its span the tile before it in the scan has not
    covered: [max(start, previous stop), stop) forwards, [start, min(stop, next start))
    backwards (spans grow monotonically along a grid axis)."""
    fresh = spans.copy()
    if backward:
        fresh[:-1, :, 1] = np.minimum(spans[:-1, :, 1], spans[1:, :, 0])
    else:
        fresh[1:, :, 0] = np.maximum(spans[1:, :, 0], spans[:-1, :, 1])
    return fresh


def scan_boxes(rows: np.ndarray, cols: np.ndarray, name: str) -> np.ndarray:
    """Per path, the new part of its region of X tensors in one scan order (closed form).

    A grid's spans grow monotonically along each axis, so in a scan the earlier paths hold,
    of path (r, c)'s region, the strip the previous line of tiles covers and the strip its
    neighbour before it in the line covers: the new part is one rectangle, the region less
    those two strips, or nothing.

    Args:
        rows: (tile rows, X, 2) each tile row's span of each tensor along H.
        cols: (tile columns, X, 2) the same along W.
        name: one of SCAN_ORDERS.

    Returns:
        (P, X, 4) by path (row-major), the new rectangle (h0, h1, w0, w1), empty
        (h0 >= h1 or w0 >= w1) where earlier paths hold the whole region.
    """
    by_column = name.startswith("column")
    lines, within = (cols, rows) if by_column else (rows, cols)
    # (lines, per line, X, 2): the new span across the lines, then along the line.
    across = _fresh(lines, backward=False)
    across[0] = lines[0]
    along = np.broadcast_to(_fresh(within, backward=False), (len(lines), *within.shape)).copy()
    along[:, 0] = within[0]
    if name.endswith("snake"):
        back = _fresh(within, backward=True)
        back[-1] = within[-1]
        along[1::2] = back
    across = np.broadcast_to(across[:, None], along.shape)
    h, w = (along, across) if by_column else (across, along)
    if by_column:  # (column, row) -> (row, column), paths row-major
        h, w = h.transpose(1, 0, 2, 3), w.transpose(1, 0, 2, 3)
    return np.concatenate([h, w], axis=3).reshape(len(rows) * len(cols), -1, 4)


def scan_pieces(tiling: Tiling, name: str) -> ComputedPieces:
    """`computed_pieces` of one scan order (`SCAN_ORDERS`), in closed form (`scan_boxes`).

    Args:
        tiling: the tiling.
        name: one of SCAN_ORDERS.

    Returns:
        The pieces, equal to `computed_pieces(tiling, scan_order(tiling.grid, name))`.
    """
    return scan_all(tiling, (name,))[0]


def scan_all(tiling: Tiling, names: Sequence[str]) -> list[ComputedPieces]:
    """`scan_pieces` of several scan orders, sharing the tiling's spans.

    Args:
        tiling: the tiling.
        names: scan orders (`SCAN_ORDERS`).

    Returns:
        One `ComputedPieces` per name.
    """
    # Every node's output spans, then the input's (tensor 0) as one more column.
    rows = np.concatenate([_spans(tiling.rows), _input_spans(tiling.rows)], axis=1)
    cols = np.concatenate([_spans(tiling.cols), _input_spans(tiling.cols)], axis=1)
    region_pixels = _region_pixels(tiling)
    result = []
    for name in names:
        boxes = np.zeros((tiling.num_paths, rows.shape[1], MAX_PIECES, 4), np.int64)
        boxes[:, :, 0] = scan_boxes(rows, cols, name)
        order = scan_order(tiling.grid, name)
        result.append(ComputedPieces(order, boxes[:, :-1], region_pixels, boxes[:, -1]))
    return result


def _input_spans(regions: tuple) -> np.ndarray:
    """(tiles on the axis, 1, 2) each tile row's (or column's) span of the block input."""
    return np.stack([axis.tensor_spans[:1] for axis in regions])


def intermediate_edge_s(
    costs: TileCosts, compute: ComputeModel, pieces: ComputedPieces
) -> np.ndarray:
    """(P,) each path's edge seconds, cut at the raw input, computing only its pieces.

    Each rectangle is one node run: its FLOPs (and activation bytes) are the path's copy's
    (`TileCosts`) scaled by the rectangle's share of the copy's output pixels, priced by the
    compute model; a node with no piece does not run. The path's stage run adds its
    overhead (`ComputeModel.edge_run_s`) for the node runs it has.

    Args:
        costs: the tiling's FLOPs and bytes per path and node.
        compute: the edge's speed and per-node overhead.
        pieces: what each path computes.

    Returns:
        Seconds by path index.
    """
    total = np.zeros(costs.flops.shape[0])
    runs = np.zeros(costs.flops.shape[0])
    shares = pieces.shares()
    for k in range(MAX_PIECES):
        share = shares[..., k]
        if not share.any():  # no path has a k-th rectangle of any node (scans have one)
            continue
        nbytes = None if costs.node_bytes is None else costs.node_bytes * share
        seconds = compute.edge_nodes_s(node_work(costs.keys, costs.flops * share, nbytes))
        total += np.where(share > 0, seconds, 0.0).sum(axis=1)
        runs += (share > 0).sum(axis=1)
    return total + compute.edge_run_s(runs)
