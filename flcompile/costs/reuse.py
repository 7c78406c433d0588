"""Edge-side reuse: the edge keeps what it has received, so a path sends only what is new.

All paths copy one block, so cut k sends the same block tensors on every path
(`Block.crossing`). When path p sends tensor t, the edge already holds the union of the
regions of t that the earlier paths (in run order) sent, and p sends only the rest of its
own region of t, as at most two rectangles (`flcompile.costs.rects.new_cover`). What the
edge holds of t after some paths is the union of their regions of t, whatever their order,
so p's new bytes depend on the set of earlier paths that sent t, not on their order.

Paths sending different tensors do not share: the edge would have to hold and
cross-reference one tensor against another, which is not the same pixel. `ReuseGeometry`
is the link-independent part (regions, bytes per pixel, which tensors cross each cut);
`ReuseLinks` adds the link and gives seconds, for one schedule, a batch of schedules, or
one step of many partial schedules (the exact search). Held sets are bit masks of paths
(P ≤ 64), one per tensor.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from flcompile.costs.link import LinkModel
from flcompile.costs.rects import Rect, new_cover, rect_area
from flcompile.errors import InternalError

MAX_REUSE_PATHS = 64  # held sets are uint64 bit masks


@dataclass(frozen=True, eq=False)
class ReuseGeometry:
    """Every path's region of every block tensor, and which tensors cross each cut.

    Attributes:
        tensors: the block tensors, in `regions`' order.
        regions: (T, P, 4) int, path p's region of tensor t as (h0, h1, w0, w1).
        bytes_per_pixel: (T,) bytes of one pixel (all channels) of each tensor.
        crossing: (K, T) bool, tensor t crosses cut k.
        neighbours: (T, P) uint64, bit q set where q ≠ p and their regions of t overlap.
    """

    tensors: tuple[str, ...]
    regions: np.ndarray
    bytes_per_pixel: np.ndarray
    crossing: np.ndarray
    neighbours: np.ndarray
    _memo: dict = field(default_factory=dict, repr=False)
    _per_tensor: dict = field(default_factory=dict, repr=False)
    _axis_memo: dict = field(default_factory=dict, repr=False)

    @property
    def num_paths(self) -> int:
        """P."""
        return int(self.regions.shape[1])

    @functools.cached_property
    def _crossing_lists(self) -> list[list[int]]:
        """Each cut's crossing tensors as Python ints (fast paths)."""
        return [np.flatnonzero(row).tolist() for row in self.crossing]

    def _tensor_lists(self, t: int) -> tuple[list[int], list[Rect]]:
        """Tensor t's neighbour masks and regions as Python values, built when first used."""
        lists = self._per_tensor.get(t)
        if lists is None:
            masks = self.neighbours[t].tolist()
            rects = [tuple(r) for r in self.regions[t].tolist()]
            lists = self._per_tensor[t] = (masks, rects)
        return lists

    def pieces(self, p: int, t: int, held: int) -> tuple[Rect, ...]:
        """What path p sends of tensor t when the paths in bit mask `held` have sent it.

        Args:
            p: the path.
            t: the tensor's index.
            held: bit mask of the paths whose regions of t the edge holds.

        Returns:
            At most two rectangles (see `new_cover`).
        """
        return self._entry(p, t, held)[0]

    def piece_bytes(self, p: int, t: int, held: int) -> float:
        """Bytes of `pieces(p, t, held)`."""
        return self._entry(p, t, held)[1]

    def _entry(self, p: int, t: int, held: int) -> tuple[tuple[Rect, ...], float]:
        masks, rects = self._tensor_lists(t)
        key = (p, t, held & masks[p])
        entry = self._memo.get(key)
        if entry is None:
            mask, held_rects = key[2], []
            while mask:
                low = mask & -mask
                held_rects.append(rects[low.bit_length() - 1])
                mask ^= low
            pieces = new_cover(rects[p], held_rects)
            area = sum(rect_area(r) for r in pieces)
            entry = self._memo[key] = (pieces, float(area * self.bytes_per_pixel[t]))
        return entry

    def add(self, p: int, k: int, held: list[int]) -> float:
        """Path p joins a schedule at cut k: its new bytes; `held` (per tensor) is updated.

        The same float operations as `step`, one schedule at a time.
        """
        total = 0.0
        for t in self._crossing_lists[k]:
            total += self._entry(p, t, held[t])[1]
            held[t] |= 1 << p
        return total

    def step(
        self, paths: np.ndarray, cuts: np.ndarray, held: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One more path in each of n partial schedules: its new bytes and the held sets after.

        Args:
            paths: (n,) the path each schedule runs next.
            cuts: (n,) its cut.
            held: (n, T) uint64 held sets before it.

        Returns:
            ((n,) bytes sent, (n, T) held sets after).
        """
        rows, ts = np.nonzero(self.crossing[cuts])  # every (schedule, crossing tensor)
        who = paths[rows]
        keys = held[rows, ts] & self.neighbours[ts, who]
        # Score each distinct (tensor, path, held set) once: sort, then mark where one changes.
        order = np.lexsort((keys, who, ts))
        sorted_t, sorted_who, sorted_keys = ts[order], who[order], keys[order]
        first = np.ones(len(order), bool)
        first[1:] = (
            (sorted_t[1:] != sorted_t[:-1])
            | (sorted_who[1:] != sorted_who[:-1])
            | (sorted_keys[1:] != sorted_keys[:-1])
        )
        distinct = zip(
            sorted_who[first].tolist(),
            sorted_t[first].tolist(),
            sorted_keys[first].tolist(),
            strict=True,
        )
        values = np.array([self._entry(p, t, k)[1] for p, t, k in distinct])
        sent = np.zeros((len(paths), len(self.tensors)))
        sent[rows[order], ts[order]] = values[np.cumsum(first) - 1]
        # Tensor by tensor, as `add` sums them (adding 0 where a tensor does not cross).
        total = np.zeros(len(paths))
        for t in np.unique(ts).tolist():
            total += sent[:, t]
        after = held.copy()
        after[rows, ts] |= np.left_shift(np.uint64(1), who.astype(np.uint64))
        return total, after

    def initial(self, size: int) -> np.ndarray:
        """(size, T) empty held sets."""
        return np.zeros((size, len(self.tensors)), np.uint64)

    def run_bytes(self, orders: np.ndarray, cuts: np.ndarray) -> np.ndarray:
        """New bytes of every position of B complete schedules.

        Args:
            orders: (B, P) path indices in run order.
            cuts: (B, P) cuts indexed by path.

        Returns:
            (B, P) bytes, in run order.
        """
        orders = np.asarray(orders, np.intp)
        run_cuts = np.take_along_axis(np.asarray(cuts, np.intp), orders, axis=1)
        if len(orders) == 1:
            held_sets = [0] * len(self.tensors)
            pairs = zip(orders[0].tolist(), run_cuts[0].tolist(), strict=True)
            return np.array([[self.add(p, k, held_sets) for p, k in pairs]])
        held = self.initial(len(orders))
        out = np.zeros(orders.shape)
        for j in range(orders.shape[1]):
            out[:, j], held = self.step(orders[:, j], run_cuts[:, j], held)
        return out

    def sends(
        self, order: Sequence[int], cuts: Sequence[int]
    ) -> list[list[tuple[int, tuple[Rect, ...]]]]:
        """What each position of one schedule sends: per crossing tensor, its pieces.

        Args:
            order: path indices in run order.
            cuts: cuts[p] is the cut of path p.

        Returns:
            Per position, [(tensor index, pieces)] in tensor order (pieces may be empty).
        """
        held = [0] * len(self.tensors)
        result = []
        for p in order:
            p, k = int(p), int(cuts[int(p)])
            entry = []
            for t in np.flatnonzero(self.crossing[k]):
                t = int(t)
                entry.append((t, self.pieces(p, t, held[t])))
                held[t] |= 1 << p
            result.append(entry)
        return result

    def raster_bytes(self, grid: tuple[int, int]) -> np.ndarray:
        """(P,) about what each path sends at cut 0 when the paths run row-major: its region
        less the row above and the tile to its left (exact where halos reach only the
        adjacent tiles; a cheap estimate for ranking grids, not a cost).

        Args:
            grid: (rows, columns), paths numbered row-major.

        Returns:
            Bytes per path.
        """
        rows, cols = grid
        total = np.zeros(self.num_paths)
        for t in np.flatnonzero(self.crossing[0]):
            h0, h1, w0, w1 = (self.regions[t, :, i].reshape(rows, cols) for i in range(4))
            top = np.concatenate([h0[:1], h1[:-1]], axis=0)  # where the row above stops
            left = np.concatenate([w0[:, :1], w1[:, :-1]], axis=1)
            height = np.clip(h1 - np.maximum(h0, top), 0, None)
            width = np.clip(w1 - np.maximum(w0, left), 0, None)
            total += (height * width).reshape(-1) * self.bytes_per_pixel[t]
        return total

    def _grid_axes(self, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        """Every tensor's row and column intervals, (T, rows, 2) and (T, cols, 2), when each
        tensor's regions are their product on `grid` (paths row-major), else None."""
        rows, cols = grid
        if rows * cols != self.num_paths:
            return None
        cells = self.regions.reshape(len(self.tensors), rows, cols, 4)
        same_rows = np.all(cells[:, :, :, :2] == cells[:, :, :1, :2])
        if not (same_rows and np.all(cells[:, :, :, 2:] == cells[:, :1, :, 2:])):
            return None
        return cells[:, :, 0, :2], cells[:, 0, :, 2:]

    def exclusive_bytes(self, grid: tuple[int, int]) -> np.ndarray:
        """(P, K) bytes of the pixels only path p needs, summed over what crosses cut k.

        Every schedule sends them with p, so they are a floor on p's send in any order
        (at most `min_bytes`, and computed without covers, for bounding many tables).
        With paths row-major on `grid`, path (i, j)'s region is row i's interval times
        column j's, so a pixel of it is shared iff its row lies in another row's interval
        (path (i', j) holds it) or its column in another column's: p's exclusive pixels are
        its exclusive rows times its exclusive columns. Where the regions are not such a
        grid, the exact `min_bytes` is returned.

        Args:
            grid: (rows, columns) of the paths.
        """
        return self._per_axis(grid, _alone, self.min_bytes)

    def share_bytes(self, grid: tuple[int, int]) -> np.ndarray | None:
        """(P, K) each path's share of what the link carries: every pixel of its regions
        (of what crosses cut k) divided by how many paths' regions hold it.

        A pixel held by n paths travels at least once if any of them sends its tensor, and
        at most n of them do, so in every schedule the bytes sent add up to at least the
        sum of the senders' shares (a floor on the link's total, not on one path's send).
        On a grid a pixel's holders are its row's holders times its column's, so the share
        is a product of per-axis sums. None where the regions are not such a grid.

        Args:
            grid: (rows, columns) of the paths.
        """
        return self._per_axis(grid, _shared, lambda: None)

    def _per_axis(self, grid: tuple[int, int], per_axis: Callable, fallback: Callable):
        """(P, K): `per_axis` of each tensor's row and column intervals, multiplied per path
        and summed over each cut's tensors; `fallback()` where a tensor is no grid. Memoised
        per grid and kind (the bound reads both of every table at every link); callers get
        a read-only array."""
        key = (grid, per_axis)
        if key in self._axis_memo:
            return self._axis_memo[key]
        axes = self._grid_axes(grid)
        if axes is None:
            return fallback()
        row_sums, col_sums = map(per_axis, axes)
        per_tensor = (row_sums[:, :, None] * col_sums[:, None, :]).reshape(len(self.tensors), -1)
        per_tensor *= self.bytes_per_pixel[:, None]
        result = (self.crossing.astype(float) @ per_tensor).T
        result.flags.writeable = False
        self._axis_memo[key] = result
        return result

    def region_bytes(self) -> np.ndarray:
        """(T, P) bytes of each path's whole region of each tensor."""
        r = self.regions
        return (r[:, :, 1] - r[:, :, 0]) * (r[:, :, 3] - r[:, :, 2]) * self.bytes_per_pixel[:, None]

    def tensor_share(self, t: int) -> np.ndarray:
        """(P,) each path's share of tensor t: its region's bytes, each pixel divided by how
        many paths' regions hold it (a set of paths' union is at least their shares).
        Memoised.

        Args:
            t: the tensor's index.
        """
        key = ("tensor share", t)
        share = self._memo.get(key)
        if share is None:
            cover, cell_bytes = self.coarse_cells(t)
            share = self._memo[key] = (cell_bytes / np.maximum(cover.sum(axis=0), 1)) @ cover.T
        return share

    def coarse_cells(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Tensor t cut into the cells between its regions' own boundaries: (P, C) bool,
        which cells each path's region covers, and (C,) each cell's bytes. Memoised.

        Args:
            t: the tensor's index.
        """
        key = ("coarse cells", t)
        entry = self._memo.get(key)
        if entry is None:
            regions = self.regions[t]
            rows, cols = np.unique(regions[:, :2]), np.unique(regions[:, 2:])
            in_rows = (regions[:, :1] <= rows[:-1]) & (rows[:-1] < regions[:, 1:2])
            in_cols = (regions[:, 2:3] <= cols[:-1]) & (cols[:-1] < regions[:, 3:4])
            cover = (in_rows[:, :, None] & in_cols[:, None, :]).reshape(len(regions), -1)
            area = np.outer(np.diff(rows), np.diff(cols)).ravel() * self.bytes_per_pixel[t]
            entry = self._memo[key] = (cover, area.astype(float))
        return entry

    def min_bytes(self) -> np.ndarray:
        """(P, K) the fewest bytes each path and cut can send: every overlapping path held."""
        num_cuts = self.crossing.shape[0]
        out = np.zeros((self.num_paths, num_cuts))
        for p in range(self.num_paths):
            per_tensor = [
                self.piece_bytes(p, t, int(self.neighbours[t, p])) for t in range(len(self.tensors))
            ]
            out[p] = self.crossing.astype(float) @ np.array(per_tensor)
        return out


def _alone(spans: np.ndarray) -> np.ndarray:
    """(T, N) how many positions of each of N intervals (start, stop) no other interval of
    its tensor covers, for (T, N, 2) spans."""
    return _axis_sums(spans.astype(np.int64).tobytes(), spans.shape[1], "alone")


def _shared(spans: np.ndarray) -> np.ndarray:
    """(T, N) Σ over each of N intervals' positions of 1 / (how many intervals of its tensor
    cover it), for (T, N, 2) spans."""
    return _axis_sums(spans.astype(np.int64).tobytes(), spans.shape[1], "shared")


@functools.lru_cache(maxsize=8192)
def _axis_sums(key: bytes, count: int, kind: str) -> np.ndarray:
    """`_alone` or `_shared` of the (T, count, 2) int64 spans whose bytes are `key` (one
    grid's rows recur in every column count)."""
    stack = np.frombuffer(key, np.int64).reshape(-1, count, 2)
    sums = np.zeros(stack.shape[:2])
    for t, spans in enumerate(stack):
        cover = np.zeros(int(spans[:, 1].max()) + 1, int)
        np.add.at(cover, spans[:, 0], 1)
        np.add.at(cover, spans[:, 1], -1)
        held = np.cumsum(cover)[:-1]  # how many intervals cover each position
        if kind == "alone":
            weight = (held == 1).astype(float)
        else:
            weight = np.divide(1.0, held, out=np.zeros(len(held)), where=held > 0)
        prefix = np.concatenate([[0.0], np.cumsum(weight)])
        sums[t] = prefix[spans[:, 1]] - prefix[spans[:, 0]]
    sums.flags.writeable = False
    return sums


def reuse_geometry(
    tensors: Sequence[str],
    regions: np.ndarray,
    bytes_per_pixel: np.ndarray,
    crossing: np.ndarray,
) -> ReuseGeometry:
    """Build the geometry, with each region's overlapping paths.

    Args:
        tensors: the block tensors.
        regions: (T, P, 4) every path's region of every tensor.
        bytes_per_pixel: (T,) bytes per pixel.
        crossing: (K, T) which tensors cross each cut.

    Returns:
        The geometry.

    Raises:
        InternalError: more than MAX_REUSE_PATHS paths.
    """
    regions = np.asarray(regions, np.int64)
    num_paths = regions.shape[1]
    if num_paths > MAX_REUSE_PATHS:
        raise InternalError(f"reuse tracks at most {MAX_REUSE_PATHS} paths, got {num_paths}")
    # Contiguous (T, P) coordinates, narrowed where they fit: the (T, P, P) compares are
    # the cost of building a geometry.
    narrow = regions.size == 0 or np.abs(regions).max() < 2**31
    h0, h1, w0, w1 = (
        np.ascontiguousarray(regions[:, :, i], np.int32 if narrow else np.int64) for i in range(4)
    )
    overlap = np.less(h0[:, :, None], h1[:, None, :])
    overlap &= np.less(h0[:, None, :], h1[:, :, None])
    overlap &= np.less(w0[:, :, None], w1[:, None, :])
    overlap &= np.less(w0[:, None, :], w1[:, :, None])
    overlap[:, np.arange(num_paths), np.arange(num_paths)] = False
    # Bit q of path p's mask is overlap[t, p, q]: pack the bits, little-endian, into 8 bytes.
    packed = np.zeros((*overlap.shape[:2], 8), np.uint8)
    bytes_used = (num_paths + 7) // 8
    packed[:, :, :bytes_used] = np.packbits(overlap, axis=2, bitorder="little")
    neighbours = packed.view("<u8")[:, :, 0].astype(np.uint64)
    return ReuseGeometry(
        tuple(tensors),
        regions,
        np.asarray(bytes_per_pixel, float),
        np.asarray(crossing, bool),
        neighbours,
    )


@dataclass(frozen=True, eq=False)
class ReuseLinks:
    """Link seconds under reuse: the geometry's new bytes at one link.

    Attributes:
        geometry: the regions and crossings.
        link: the device→edge link (one message per path; 0 bytes cost nothing).
    """

    geometry: ReuseGeometry
    link: LinkModel

    def step(
        self, paths: np.ndarray, cuts: np.ndarray, held: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`ReuseGeometry.step` in seconds."""
        sent, after = self.geometry.step(paths, cuts, held)
        return np.asarray(self.link.send_s(sent), float), after

    def run_s(self, orders: np.ndarray, cuts: np.ndarray) -> np.ndarray:
        """(B, P) link seconds in run order of B complete schedules (cuts indexed by path)."""
        return np.asarray(self.link.send_s(self.geometry.run_bytes(orders, cuts)), float)

    def min_s(self) -> np.ndarray:
        """(P, K) the fewest link seconds of each path and cut, in any schedule."""
        return np.asarray(self.link.send_s(self.geometry.min_bytes()), float)

    def floor_s(self, grid: tuple[int, int]) -> np.ndarray:
        """(P, K) link seconds of each path's exclusive pixels, a cheaper floor than `min_s`."""
        return np.asarray(self.link.send_s(self.geometry.exclusive_bytes(grid)), float)

    def share_s(self, grid: tuple[int, int]) -> np.ndarray | None:
        """(P, K) seconds of each path's share of the link's bytes (`share_bytes`), with no
        latency (a path may send no message at all); None where the regions are no grid."""
        shares = self.geometry.share_bytes(grid)
        if shares is None:
            return None
        return np.asarray(replace(self.link, latency_s=0.0).send_s(shares), float)
