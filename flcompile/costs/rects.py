"""Rectangle geometry of edge-side reuse: what of a region is new, sent as at most two rectangles.

A region is a half-open rectangle (h0, h1, w0, w1) of one tensor's pixels. `new_cover`
takes a path's region and the rectangles of the same tensor the edge already holds, and
returns at most two rectangles inside the region that cover every pixel not held, with the
fewest pixels in total: exactly the new part when it is a rectangle or two (an L-shape),
otherwise the cheapest cover, which re-sends some held pixels.

Why the candidates below find the optimum: compress the region's axes at every held
boundary, so each cell is wholly new or wholly held. Any cover can be shrunk to the
bounding box (bbox) of the new cells. With one rectangle that is the bbox itself. With two,
A and B, together touching all four sides of the bbox: if one touches three sides, cutting
the other off at its edge gives a disjoint cover no larger, which a corner-anchored A (with
the full extent on one axis) reaches too; if each touches two adjacent sides, A holds one
corner of the bbox; if each touches two opposite sides, A is a full-height band. So it
suffices to try every A anchored at a corner and every full-height band, cost each as
|bbox(new ∩ A)| + |bbox(new \\ A)|, and take the least.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

Rect = tuple[int, int, int, int]  # (h0, h1, w0, w1), half-open


def rect_area(r: Rect) -> int:
    """Pixels of a rectangle (0 when empty)."""
    return max(0, r[1] - r[0]) * max(0, r[3] - r[2])


def intersect(a: Rect, b: Rect) -> Rect | None:
    """The common part of two rectangles, or None when they do not overlap."""
    r = (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))
    return r if r[0] < r[1] and r[2] < r[3] else None


def cells(region: Rect, rects: Sequence[Rect]) -> tuple[np.ndarray, np.ndarray]:
    """The region's axes compressed at every boundary of `rects` that falls inside it.

    Args:
        region: the region.
        rects: rectangles (any; only their boundaries inside the region count).

    Returns:
        (row bounds, column bounds): sorted coordinates, the region's own ends included;
        cell (i, j) is [hs[i], hs[i+1]) × [ws[j], ws[j+1]).
    """
    hs, ws = _axes(region, rects)
    return np.array(hs), np.array(ws)


def _axes(region: Rect, rects: Sequence[Rect]) -> tuple[list[int], list[int]]:
    """`cells` as sorted lists."""
    h0, h1, w0, w1 = region
    hs = {h0, h1} | {v for r in rects for v in r[:2] if h0 < v < h1}
    ws = {w0, w1} | {v for r in rects for v in r[2:] if w0 < v < w1}
    return sorted(hs), sorted(ws)


@functools.lru_cache(maxsize=256)
def _candidates(m: int, n: int) -> np.ndarray:
    """(C, m, n) cell masks of every corner-anchored rectangle and every full-height band."""
    rows, cols = np.arange(m), np.arange(n)
    masks = []
    for a in range(1, m + 1):
        for b in range(1, n + 1):
            top, left = rows < a, cols < b
            bottom, right = rows >= m - a, cols >= n - b
            for r, c in ((top, left), (top, right), (bottom, left), (bottom, right)):
                masks.append(r[:, None] & c[None, :])
    for c0 in range(n):
        for c1 in range(c0 + 1, n + 1):
            band = (cols >= c0) & (cols < c1)
            masks.append(np.broadcast_to(band[None, :], (m, n)))
    return np.array(masks)


def _bbox(mask: np.ndarray, hc: np.ndarray, wc: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bounding boxes of (C, m, n) masks: first/last+1 row and column, and their pixel areas."""
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    m, n = rows.shape[1], cols.shape[1]
    r0 = np.argmax(rows, axis=1)
    r1 = m - np.argmax(rows[:, ::-1], axis=1)
    c0 = np.argmax(cols, axis=1)
    c1 = n - np.argmax(cols[:, ::-1], axis=1)
    empty = ~rows.any(axis=1)
    area = np.where(empty, 0, (hc[r1] - hc[r0]) * (wc[c1] - wc[c0]))
    return r0, r1, c0, c1, area, empty


def new_cover(region: Rect, held: Sequence[Rect]) -> tuple[Rect, ...]:
    """At most two rectangles in `region` covering its pixels outside `held`, fewest pixels.

    Args:
        region: the path's region of a tensor.
        held: rectangles of the same tensor the edge already holds (any; clipped here).

    Returns:
        () when everything is held, else one or two rectangles inside `region`; ties go to
        one rectangle, then to the first candidate (deterministic).
    """
    clipped = [c for r in held if (c := intersect(region, r)) is not None]
    if not clipped:
        return (region,)
    # The cover moves with the region: solve it once per shape and held pattern (tiles of
    # one grid repeat both), relative to the region's corner.
    h0, h1, w0, w1 = (int(v) for v in region)
    relative = frozenset((a - h0, b - h0, c - w0, d - w0) for a, b, c, d in clipped)
    cover = _relative_cover(h1 - h0, w1 - w0, relative)
    return tuple((a + h0, b + h0, c + w0, d + w0) for a, b, c, d in cover)


@functools.lru_cache(maxsize=1 << 15)
def _relative_cover(height: int, width: int, clipped: frozenset[Rect]) -> tuple[Rect, ...]:
    """`new_cover` of the region (0, height, 0, width) and held rectangles inside it."""
    region = (0, height, 0, width)
    # The compressed axes (`cells`) and the new cells, in plain Python: most regions stop
    # here, and numpy's per-call cost dominates on a few cells.
    hs, ws = _axes(region, clipped)
    row, col = {v: i for i, v in enumerate(hs)}, {v: i for i, v in enumerate(ws)}
    new_rows = [[True] * (len(ws) - 1) for _ in range(len(hs) - 1)]
    for c_h0, c_h1, c_w0, c_w1 in clipped:
        c0, c1 = col[c_w0], col[c_w1]
        for i in range(row[c_h0], row[c_h1]):
            new_rows[i][c0:c1] = [False] * (c1 - c0)
    rows = [i for i, line in enumerate(new_rows) if any(line)]
    if not rows:
        return ()
    cols = [j for j in range(len(ws) - 1) if any(line[j] for line in new_rows)]

    def rect(r0: int, r1: int, c0: int, c1: int) -> Rect:
        return (int(hs[r0]), int(hs[r1]), int(ws[c0]), int(ws[c1]))

    box = (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)
    if all(all(line[box[2] : box[3]]) for line in new_rows[box[0] : box[1]]):
        return (rect(*box),)  # the new part is a rectangle
    new = np.array(new_rows, bool)
    hs, ws = np.array(hs), np.array(ws)
    hc, wc = hs - hs[0], ws - ws[0]
    best = (rect(*box),)
    best_cost = rect_area(best[0])
    masks = _candidates(*new.shape)
    inside, outside = _bbox(masks & new, hc, wc), _bbox(~masks & new, hc, wc)
    useful = ~inside[5] & ~outside[5]  # both parts hold new cells, else one rectangle
    cost = np.where(useful, inside[4] + outside[4], np.iinfo(np.int64).max)
    i = int(np.argmin(cost))
    if cost[i] < best_cost:
        best = tuple(rect(*(int(v[i]) for v in part[:4])) for part in (inside, outside))
    return best
