"""A lower bound on every schedule of one tiling (one `CostTable`): any order, any cuts.

The simulator (`flcompile.simulate`) runs a three-stage flow shop: a serial device, a FIFO
link and an edge (serial, k servers or unlimited), all in one run order, then the fuse. A
schedule picks a cut per path (its mode) and an order. Let a be the path that runs first
and b the one that runs last, and write D_p, L_p, E_p for path p's seconds at its cut.
Every schedule's fuse start is at least each of

    X = Σ_p D_p + L_b + E_b                   device: b's device part ends at Σ D, then
                                               b is sent and finished on the edge
    Y = D_a + Σ_p L_p + [L_b > 0] E_b         link: no send starts before a's device part
                                               ends; the last sender is b if b sends (under
                                               reuse b's data wait for the link to drain
                                               even if it sends nothing: E_b always counts)
    Z = D_a + [E_a > 0] L_a + Σ_p E_p / c     edge with c servers (absent if unlimited): no
                                               edge part starts before the first arrival
    S = max_p (D_p + L_p + E_p)               one path alone

(a path that sends nothing does not occupy the link, an edge part of 0 s no server: hence
the brackets). For weights λ ≥ 0 with λ_X + λ_Y + λ_Z = 1, max(X, Y, Z) ≥ λ·(X, Y, Z), a
sum of one term per path plus the head of a and the tail of b. Its minimum over every
choice of cuts and every a ≠ b separates: each path takes its cheapest cut under λ, and a
and b pay only their extra over that. So for every λ

    LB(λ) = Σ_p min_k λ·c_pk + min over a ≠ b of (H_a(λ) + T_b(λ))

(c_pk = (D, L, E/c) at cut k; H_a, T_b the least extra a pays as the first path and b as
the last) lies below every schedule. It is the Lagrangian dual of the LP relaxation over
fractional cuts with the first and last paths fixed, and concave in λ. `input_bound`
maximises it by cutting planes (each evaluation at a λ yields a vector v of its minimiser
with λ'·v >= LB(λ') for all λ'; the best λ under the planes so far is a small matrix
game) and takes the max with S; post_fuse_s and return_s follow the fuse in every
schedule and are added. Any λ gives a valid bound, so a λ short of the best only loosens
it.

`SpaceBound` bounds many tables at once: per K, every table at one probe table's best λ
(vectorised over their concatenated paths), then each table's own best λ only where that
can still change the minimum over the space, and where even that stays below the ceiling,
the table's drain bound (`BoundInput.drain`, `flcompile.drain_bound`: under reuse, what the
link must carry before the paths with long edge parts can start, with whole paths, not
fractions).

Edge-side reuse hook. When the link carries only what earlier paths have not sent, L_p
depends on the order. Order-free facts keep the bound valid: the first path sends its
whole region (its L_a in the head is the full send); every path sends at least the pixels
no other path needs (its exclusive part); all paths together send at least the union of
their regions. `BoundInput` takes `link_floor_s` (per path and cut, what the path sends in
any order: the exclusive part; used in the tails) apart from `link_s` (the full send;
used in the head), `link_share_s` (per path and cut, its share of the link's total: each
pixel divided by how many paths' regions hold it, since it travels at least once if any
of them sends it; the shares add up to a floor on Σ L, so they stand in Σ L), and
`link_total_floor_s` (seconds the link needs whatever the cuts), which adds the term
min D + link_total_floor_s + min E. Without reuse all are the table's own sends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from flcompile.costs.table import CostTable
from flcompile.drain_bound import drain_bound
from flcompile.errors import InternalError
from flcompile.lower_bound import min_max

# LB(λ) is maximised by cutting planes (Kelley's method), exact up to POLISH_TOL (relative)
# or after POLISH_ROUNDS rounds.
POLISH_TOL = 1e-9
POLISH_ROUNDS = 40


@dataclass(frozen=True, eq=False)
class BoundInput:
    """One tiling's costs as the bound reads them.

    Attributes:
        device_s: (P, K) device seconds of path p at cut k.
        link_s: (P, K) seconds of path p's whole send at cut k (what it sends when first).
        link_floor_s: (P, K) seconds path p sends at cut k in any order (= link_s without
            reuse; its exclusive part with reuse).
        edge_s: (P, K) edge seconds of path p after cut k.
        edge_concurrency: 1 = serial, k > 1 = k servers, 0 = unlimited.
        after_fuse_s: post_fuse_s + return_s.
        link_total_floor_s: seconds the link needs in every schedule (0 = no such floor).
        link_share_s: (P, K) path p's share at cut k of what the link carries in every
            schedule (their sum over the paths is a floor on the link's total, used in its
            sum); None: `link_floor_s`.
        empty_waits: a path that sends nothing still waits for the link to drain before
            its edge part (`CostTable.waits`, edge-side reuse), so Y charges E_b always.
        drain: a further bound of whole paths, given a ceiling (`flcompile.drain_bound`,
            edge-side reuse), taken where the Lagrangian one stays below the ceiling; None:
            none.
    """

    device_s: np.ndarray
    link_s: np.ndarray
    link_floor_s: np.ndarray
    edge_s: np.ndarray
    edge_concurrency: int
    after_fuse_s: float
    link_total_floor_s: float = 0.0
    link_share_s: np.ndarray | None = None
    empty_waits: bool = False
    drain: Callable[[float], float] | None = None

    @staticmethod
    def of(table: CostTable) -> BoundInput:
        """The input of a table: every path sends its whole region, or under edge-side
        reuse (`table.reuse`) at least the pixels no other path needs.

        Args:
            table: the cost table.

        Returns:
            The bound's input.
        """
        if table.reuse is None:
            return BoundInput(
                table.device_s,
                table.link_s,
                table.link_s,
                table.edge_s,
                table.edge_concurrency,
                table.post_fuse_s + table.return_s,
            )
        return BoundInput(
            table.device_s,
            table.link_s,
            table.reuse.floor_s(table.grid),
            table.edge_s,
            table.edge_concurrency,
            table.post_fuse_s + table.return_s,
            link_share_s=table.reuse.share_s(table.grid),
            empty_waits=table.waits,
            drain=functools.partial(drain_bound, table),
        )


def _or(value: np.ndarray | None, default: np.ndarray) -> np.ndarray:
    return default if value is None else value


class _Group:
    """The arrays LB(λ) is built from, for tables of one K and edge model, paths concatenated.

    Attributes:
        index: each table's position in the caller's list.
    """

    def __init__(self, inputs: Sequence[BoundInput], index: np.ndarray) -> None:
        conc = inputs[0].edge_concurrency
        num_cuts = np.shape(inputs[0].device_s)[-1]
        for inp in inputs:
            shapes = {np.shape(a) for a in (inp.device_s, inp.link_s, inp.link_floor_s, inp.edge_s)}
            shape = shapes.pop()
            if shapes or len(shape) != 2 or 0 in shape:
                raise InternalError("bound input arrays must share one non-empty (P, K) shape")
            if shape[1] != num_cuts or inp.edge_concurrency != conc:
                raise InternalError("bound inputs of one group must share K and the edge model")
        if conc < 0:
            raise InternalError(f"edge_concurrency must be >= 0, got {conc}")
        dev, link, floor, edge = (
            np.concatenate([np.asarray(getattr(i, name), float) for i in inputs])
            for name in ("device_s", "link_s", "link_floor_s", "edge_s")
        )
        share = np.concatenate(
            [np.asarray(_or(i.link_share_s, i.link_floor_s), float) for i in inputs]
        )
        sizes = np.array([np.shape(i.device_s)[0] for i in inputs])
        waits = np.repeat([i.empty_waits for i in inputs], sizes)[:, None]
        self.index = index
        self._set_paths(sizes)
        unlimited = conc == 0
        zeros = np.zeros_like(dev)
        # Per term X, Y (and Z unless the edge is unlimited): what each path adds to its
        # sum, and the extra the term charges the first path (head) and the last (tail).
        self.cost = np.stack([dev, share] + ([] if unlimited else [edge / conc]))
        self.head = np.stack([zeros, dev] + ([] if unlimited else [dev + (edge > 0) * link]))
        y_tail = np.where(waits | (floor > 0), edge, 0.0)
        self.tail = np.stack([floor + edge, y_tail] + ([] if unlimited else [zeros]))
        alone = np.maximum.reduceat(np.min(dev + floor + edge, axis=1), self.starts)
        totals = np.array([i.link_total_floor_s for i in inputs])
        first = np.minimum.reduceat(np.min(dev, axis=1), self.starts)
        last = np.minimum.reduceat(np.min(edge, axis=1), self.starts)
        extra_link = np.where(totals > 0, first + totals + last, -np.inf)
        self.floor = np.maximum(alone, extra_link)  # the λ-free terms, S and the link floor

    def _set_paths(self, sizes: np.ndarray) -> None:
        self.sizes = sizes
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.segment = np.repeat(np.arange(len(sizes)), sizes)

    @property
    def num_terms(self) -> int:
        """m: 2 with an unlimited edge, else 3."""
        return self.cost.shape[0]

    def take(self, tables: np.ndarray) -> _Group:
        """The group of the tables at positions `tables` (increasing) of this one."""
        sub = object.__new__(_Group)
        paths = np.concatenate(
            [np.arange(self.starts[t], self.starts[t] + self.sizes[t]) for t in tables]
        )
        sub.index = self.index[tables]
        sub._set_paths(self.sizes[tables])
        sub.cost, sub.head, sub.tail = self.cost[:, paths], self.head[:, paths], self.tail[:, paths]
        sub.floor = self.floor[tables]
        return sub

    def at(self, lam: np.ndarray) -> np.ndarray:
        """LB(λ) without what follows the fuse: (n, B) for lam (n, B, m), one λ per table."""
        lam = lam[:, self.segment]  # (n, N, m): each path's table's λ
        w = np.einsum("npm,mpk->npk", lam, self.cost)
        g = w.min(axis=2)  # each path's cheapest cut under λ
        head = (np.einsum("npm,mpk->npk", lam, self.head) + w).min(axis=2) - g
        tail = (np.einsum("npm,mpk->npk", lam, self.tail) + w).min(axis=2) - g
        pair = _min_pair(head, tail, self.starts, self.segment)
        pair[:, self.sizes == 1] = -np.inf  # one path: S alone is exact
        return np.add.reduceat(g, self.starts, axis=1) + pair


def _piece(group: _Group, lam: np.ndarray) -> tuple[float, np.ndarray]:
    """LB(λ) of a one-table group and the vector v of its minimiser, LB(λ) = λ·v.

    v is (X, Y, Z) (or (X, Y)) of the cuts and the first and last paths that attain the
    minimum at λ, so λ'·v >= LB(λ') for every λ': a cutting plane of the concave LB.
    """
    cost, head, tail = group.cost, group.head, group.tail
    paths = np.arange(cost.shape[1])
    w = np.einsum("m,mpk->pk", lam, cost)
    k = w.argmin(axis=1)
    g = w[paths, k]
    hk = (np.einsum("m,mpk->pk", lam, head) + w).argmin(axis=1)
    tk = (np.einsum("m,mpk->pk", lam, tail) + w).argmin(axis=1)
    first = head[:, paths, hk] + cost[:, paths, hk] - cost[:, paths, k]  # (m, P) extras
    last = tail[:, paths, tk] + cost[:, paths, tk] - cost[:, paths, k]
    pair = (lam @ first)[:, None] + (lam @ last)[None, :]
    np.fill_diagonal(pair, np.inf)
    a, b = np.unravel_index(np.argmin(pair), pair.shape)
    v = cost[:, paths, k].sum(axis=1) + first[:, a] + last[:, b]
    return float(g.sum() + pair[a, b]), v


def _polish(group: _Group, lam: np.ndarray, value: float) -> tuple[float, np.ndarray]:
    """Kelley's cutting planes from λ: the max of LB over the simplex, up to POLISH_TOL.

    Every plane λ·v lies above LB, so the best λ under the planes so far (a matrix game,
    `flcompile.lower_bound.min_max`) bounds the max from above; LB there adds a plane.
    """
    m = len(lam)
    planes = []
    for start in (*np.eye(m), lam):
        v_value, v = _piece(group, start)
        planes.append(v)
        if v_value > value:
            value, lam = v_value, start
    for _ in range(POLISH_ROUNDS):
        neg_upper, support, alpha = min_max(-np.array(planes))
        upper = -neg_upper
        if upper - value <= POLISH_TOL * abs(upper):
            break
        point = np.zeros(m)
        point[support] = alpha
        v_value, v = _piece(group, point)
        planes.append(v)
        if v_value > value:
            value, lam = v_value, point
    return value, lam


def _min_pair(h: np.ndarray, t: np.ndarray, starts: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Per row and segment, min over a ≠ b in the segment of h[a] + t[b] (inf for one path)."""
    t1 = np.minimum.reduceat(t, starts, axis=1)
    is_min = t == t1[:, seg]
    count = np.cumsum(is_min, axis=1)
    before = np.concatenate([np.zeros((len(t), 1)), count[:, :-1]], axis=1)[:, starts]
    first = is_min & (count - before[:, seg] == 1)  # where each segment's min of t is
    t2 = np.minimum.reduceat(np.where(first, np.inf, t), starts, axis=1)
    other = np.where(first, t2[:, seg], t1[:, seg])  # the least t[b] over b != a
    return np.minimum.reduceat(h + other, starts, axis=1)


class SpaceBound:
    """Lower bounds on every schedule of each of many tables, maximised only where it matters.

    For the tables of one K, the table with the fewest paths (more than one) gets its best
    λ first; every table of that K is then bounded at that λ in one vectorised pass (the
    best λ depends mostly on F and the link, little on the grid). `full(i)` maximises
    table i's own LB(λ); `below` and `value` do so only for the tables that can still be
    below a ceiling, in increasing order of their bound. Every bound is valid at all times.
    """

    def __init__(self, inputs: Sequence[BoundInput]) -> None:
        """Group the inputs by K and edge model and bound each group at its probe's best λ.

        Args:
            inputs: one per (F, grid) table.

        Raises:
            InternalError: an input's arrays do not share one non-empty (P, K) shape, or the
                edge concurrency is negative.
        """
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, inp in enumerate(inputs):
            by_shape.setdefault((np.shape(inp.device_s)[-1], inp.edge_concurrency), []).append(i)
        count = len(inputs)
        self._after = np.array([inp.after_fuse_s for inp in inputs])
        self._drain = [inp.drain for inp in inputs]
        self._floor = np.empty(count)
        self._value = np.full(count, -np.inf)  # the largest LB(λ) found
        self._lam: list[np.ndarray | None] = [None] * count  # the λ that gave it
        self._where: list[tuple[_Group, int]] = [None] * count  # type: ignore[list-item]
        self._full: set[int] = set()
        for index in by_shape.values():
            group = _Group([inputs[i] for i in index], np.array(index))
            self._floor[group.index] = group.floor
            for t, i in enumerate(index):
                self._where[i] = (group, t)
            multi = np.flatnonzero(group.sizes > 1)
            if multi.size == 0:
                continue
            probe = int(group.index[multi[np.argmin(group.sizes[multi])]])
            self._maximise(probe)
            lam = self._lam[probe]
            values = group.at(np.broadcast_to(lam, (1, len(index), len(lam))))[0]
            for t in np.flatnonzero(values > self._value[group.index]):
                self._value[index[t]], self._lam[index[t]] = values[t], lam

    @property
    def bounds(self) -> np.ndarray:
        """(T,) each table's bound so far, in seconds (what follows the fuse included)."""
        return np.maximum(self._value, self._floor) + self._after

    def full(self, index: int, ceiling: float = np.inf) -> float:
        """Table `index`'s bound with LB(λ) maximised over λ, and where that stays below
        `ceiling`, the input's drain bound at that ceiling (computed once).

        Args:
            index: the table's position in the inputs.
            ceiling: seconds; what the caller needs the table to be proven above.

        Returns:
            Seconds.
        """
        self._maximise(index)
        drain = self._drain[index]
        if drain is not None and self.bounds[index] < ceiling:
            self._drain[index] = None  # once
            self._floor[index] = max(self._floor[index], drain(ceiling) - self._after[index])
        return float(self.bounds[index])

    def _maximise(self, index: int) -> None:
        """Table `index`'s LB(λ) maximised over λ (once)."""
        if index in self._full:
            return
        self._full.add(index)
        group, t = self._where[index]
        if group.sizes[t] > 1:
            one = group.take(np.array([t]))
            start = self._lam[index]
            if start is None:
                start = np.full(group.num_terms, 1.0 / group.num_terms)
            self._value[index], self._lam[index] = _polish(one, start, self._value[index])

    def below(self, ceiling: Callable[[], float]) -> Iterator[int]:
        """The tables whose full bound is below `ceiling()`, by increasing bound so far.

        Args:
            ceiling: the current ceiling in seconds (it may fall between tables).

        Yields:
            Table indices.
        """
        start = self.bounds
        for i in np.argsort(start, kind="stable"):
            if start[i] >= ceiling():
                return
            if self.full(int(i), ceiling()) < ceiling():
                yield int(i)

    def value(self, ceiling: float, exact: Mapping[int, float]) -> tuple[float, int | None]:
        """min(ceiling, every table's bound or proven optimum), and the table attaining it.

        Args:
            ceiling: the latency of a plan the space can reach (e.g. NFL's, or the best
                plan found); only the tables below it matter for the minimum.
            exact: optima an exact solver proved, by table index (they replace the bound).

        Returns:
            (seconds, the index of the table that attains it, or None for the ceiling).
        """
        best: list = [ceiling, None]  # (seconds, table), read by below() as it goes
        for i in self.below(lambda: best[0]):
            v = exact.get(i, self.bounds[i])
            if v < best[0]:
                best[:] = float(v), i
        return best[0], best[1]


def input_bound(inp: BoundInput) -> float:
    """A lower bound on the finish time of every schedule of a tiling's costs.

    Args:
        inp: the tiling's per-path, per-cut seconds and edge model.

    Returns:
        Seconds: no order and no choice of cuts finishes earlier.

    Raises:
        InternalError: the arrays do not share one non-empty (P, K) shape, or the edge
            concurrency is negative.
    """
    return SpaceBound([inp]).full(0)


def table_bound(table: CostTable) -> float:
    """A lower bound on the finish time of every schedule of `table` (independent paths).

    Args:
        table: one (F, grid)'s cost table.

    Returns:
        Seconds: no order and no choice of cuts finishes earlier.

    Raises:
        InternalError: the table has no paths or a negative edge concurrency.
    """
    return input_bound(BoundInput.of(table))
