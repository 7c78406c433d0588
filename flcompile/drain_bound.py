"""A lower bound under edge-side reuse from what the link must carry before the slow paths start.

A path's edge part starts once its data have arrived (docs/design.md §4), and under reuse its
data are every pixel of its region of each tensor its cut sends, whichever path carried them.
The link is serial, so when the last of a set S of paths cut at k has its data, the link has
carried the union of their regions, and no send started before the first path's device part
ended. So for every edge time e, with S_e the paths whose edge part at cut k takes e or more,

    W_e = min D + e + |∪_{p ∈ S_e} region_p| / rate        (bytes of each tensor cut k sends)

lies below the fuse start of every schedule that cuts all of S_e at k.

A schedule that cuts a set N of n paths elsewhere:

- loses from the union only pixels all of whose holders in S_e are in N. A pixel held by m
  paths of S_e can only be lost if m <= n, and then each holder carries 1/m of it, so the
  loss is at most the n largest such shares;
- where a moved path's new cut still leaves an edge part of e or more, it stays in S_e with
  that cut's other tensors, which only the n moved paths send: their union there is at
  least 1/n of each region;
- pays at least X(n) = the least Σ D with n paths off k, plus the least exclusive send and
  edge part of the path that runs last on the device.

So every schedule's fuse starts at or after min over n of max(X(n), max_e W_e(n)), for
each k. Given a ceiling T, a cut whose own device part, exclusive send and edge part alone
end at T or later is left out of every path's choices: a schedule that takes it ends at T
or later anyway, so min(T, the bound without it) holds. That is what makes whole paths pay
off: a path moved to a deep cut costs the device more than T.

The Lagrangian bound (`flcompile.space_bound`) relaxes the cuts to fractions, which lets
device and link work trade at no loss and counts each path's share of the link, not the
union the slow paths wait for; on the unlimited edge (Eq. 4), where nothing but arrivals
holds a path back, this bound is what it misses. Unions and shares are computed on the
coarse grid of the regions' own boundaries (at most two per region and axis), so one cut
costs a few small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flcompile.costs.link import BYTES_PER_MB
from flcompile.costs.reuse import ReuseGeometry
from flcompile.costs.table import CostTable

#: Up to this many paths every set N is tried with its exact union (2^P sets); above, the
#: bound goes by the count n = |N| and the largest shares.
SUBSET_PATHS = 10


def drain_bound(table: CostTable, ceiling: float = np.inf) -> float:
    """A lower bound on the finish time of every schedule of a reuse table.

    Args:
        table: one tiling's cost table.
        ceiling: T; a path's cut whose own device part, exclusive send and edge part
            already end at T or later is left out, and the bound is at most T.

    Returns:
        Seconds (what follows the fuse included); -inf for a table without reuse (or whose
        empty sends do not wait for the link, `CostTable.waits`).
    """
    if table.reuse is None or not table.waits:
        return -np.inf
    geometry = table.reuse.geometry
    s_per_byte = 1.0 / (table.reuse.link.rate_MBps * BYTES_PER_MB)
    device, edge = np.asarray(table.device_s, float), np.asarray(table.edge_s, float)
    floor = np.asarray(table.reuse.floor_s(table.grid), float)
    after = table.post_fuse_s + table.return_s
    allowed = device + floor + edge + after < ceiling
    # Only the tensors of cuts some path may take can be a moved path's new tensors.
    used = allowed.any(axis=0)
    region_s = geometry.region_bytes() * s_per_byte  # (T, P)
    share_s = np.zeros_like(region_s)
    for t in np.flatnonzero(geometry.crossing[used].any(axis=0)):
        share_s[t] = geometry.tensor_share(int(t)) * s_per_byte
    by = _by_subset if table.num_paths <= SUBSET_PATHS else _by_count
    after_device = floor + edge
    last, head = float(np.min(after_device)), float(np.min(device))
    best = -np.inf
    for k in range(table.num_cuts):
        if not geometry.crossing[k].any():
            continue
        others = allowed.copy()
        others[:, k] = False
        moves = _Moves(
            device[:, k],
            np.where(others, device, np.inf).min(axis=1),
            np.where(others, after_device, np.inf).min(axis=1),
            last,
            head,
        )
        if moves.all_moved() <= best:
            continue  # every path elsewhere leaves no drain term: k cannot raise the bound
        best = max(
            best, by(_Cut.of(geometry, s_per_byte, edge, k, others, region_s, share_s, moves))
        )
        if best + after >= ceiling:
            break
    return min(ceiling, best + after)


@dataclass(frozen=True)
class _Moves:
    """The device side at one cut k: what each path costs there and elsewhere.

    Attributes:
        device_k: (P,) device seconds at k.
        moved_device: (P,) least device seconds at an allowed other cut (inf: none).
        moved_after: (P,) least exclusive send and edge seconds at an allowed other cut.
        last: the least exclusive send and edge seconds at any cut.
        head: the least device seconds at any cut.
    """

    device_k: np.ndarray
    moved_device: np.ndarray
    moved_after: np.ndarray
    last: float
    head: float

    def all_moved(self) -> float:
        """The device term with every path elsewhere: an upper limit of the bound at k."""
        total = self.moved_device.sum()
        return max(total + self.last, total + self.moved_after.min())


@dataclass(frozen=True)
class _Cut:
    """What the bound reads at one cut k. Thresholds e_j: each distinct edge seconds at k,
    and the least edge seconds at any allowed cut (every path in S_e).

    Attributes:
        cover: (P, C) which cells each path's regions of the tensors k sends cover.
        seconds: (C,) each cell's link seconds.
        e: (J,) the thresholds.
        in_s: (J, P) path p at cut k is in S_e.
        added: (2, J, P) the least path p adds to S_e's union if it leaves k: its regions
            of the tensors its new cut sends and k does not (per moved path, to be divided
            by their count), and their shares among all paths; 0 where a cut with an edge
            part under e is allowed; inf where no other cut is.
        moves: the device side.
    """

    cover: np.ndarray
    seconds: np.ndarray
    e: np.ndarray
    in_s: np.ndarray
    added: np.ndarray
    moves: _Moves

    @staticmethod
    def of(
        geometry: ReuseGeometry,
        s_per_byte: float,
        edge: np.ndarray,
        k: int,
        others: np.ndarray,
        region_s: np.ndarray,
        share_s: np.ndarray,
        moves: _Moves,
    ) -> _Cut:
        """The terms at cut k, with `others` (P, K) the cuts a path may leave k for."""
        cells = [geometry.coarse_cells(int(t)) for t in np.flatnonzero(geometry.crossing[k])]
        at_k = edge[:, k]
        e = np.unique(at_k)[::-1]
        least = np.min(edge[others], initial=e[-1])
        if least < e[-1]:
            e = np.append(e, least)
        used = others.any(axis=0)  # the cuts some path may leave k for
        new = (geometry.crossing[used] & ~geometry.crossing[k]).astype(float)  # (U, T)
        keeps = edge[None, :, used] >= e[:, None, None]  # (J, P, U)
        may = others[None, :, used]
        added = np.stack(
            [
                np.where(may, np.where(keeps, (new @ gain).T[None], 0.0), np.inf).min(
                    axis=2, initial=np.inf
                )
                for gain in (region_s, share_s)
            ]
        )
        return _Cut(
            np.hstack([c for c, _ in cells]),
            np.concatenate([w for _, w in cells]) * s_per_byte,
            e,
            at_k[None, :] >= e[:, None],
            added,
            moves,
        )


def _by_count(cut: _Cut) -> float:
    """min over n of max(X(n), max_e W_e(n)): every set N of n paths off k, by the n largest
    net losses and the n cheapest moves."""
    moves = cut.moves
    num_paths = len(moves.device_k)
    moved = np.sort(moves.moved_device - moves.device_k)
    devices = np.concatenate(
        [
            [moves.device_k.sum() + moves.last],
            np.maximum(
                moves.device_k.sum() + np.cumsum(moved) + moves.last,
                np.cumsum(np.sort(moves.moved_device)) + moves.moved_after.min(),
            ),
        ]
    )
    held = cut.in_s.astype(float) @ cut.cover  # (J, C) how many of S_e hold each cell
    union = (held > 0) @ cut.seconds
    per_holder = np.where(held > 0, cut.seconds / np.maximum(held, 1), 0.0)
    # n paths can take away only cells that n or fewer paths of S_e hold: each path's share
    # of those, for every n, by cells in increasing order of holders.
    order = np.argsort(held, axis=1, kind="stable")
    by_cell = np.take_along_axis(per_holder, order, axis=1)[:, :, None] * cut.cover.T[order]
    running = np.concatenate([np.zeros((len(cut.e), 1, num_paths)), np.cumsum(by_cell, axis=1)], 1)
    counts = np.arange(1, num_paths + 1)
    upto = np.stack([np.searchsorted(row, counts, side="right") for row in np.sort(held, axis=1)])
    share = np.take_along_axis(running, upto[:, :, None], axis=1)  # (J, N, P)
    share = share.transpose(1, 0, 2) * cut.in_s  # (N, J, P), n = 1..P
    counts = counts[:, None, None]
    lost = np.full((num_paths + 1, len(cut.e)), np.inf)
    for added, per_count in ((cut.added[0], True), (cut.added[1], False)):
        loss = share - (added[None] / counts if per_count else added[None])  # (N, J, P)
        top = np.cumsum(-np.sort(-loss, axis=2), axis=2)
        top = top[np.arange(num_paths), :, np.arange(num_paths)]  # (N, J): n largest
        lost = np.minimum(lost, np.vstack([np.zeros((1, len(cut.e))), top]))
    waits = moves.head + cut.e[None, :] + union[None, :] - lost
    sizes = cut.in_s.sum(axis=1)
    waits[np.arange(num_paths + 1)[:, None] >= sizes[None, :]] = -np.inf  # S_e all moved
    return float(np.min(np.maximum(devices, waits.max(axis=1))))


def _by_subset(cut: _Cut) -> float:
    """min over every set N of paths off k of max(X(N), max_e W_e(N)), with the exact union
    of the paths that stay."""
    moves = cut.moves
    num_paths = len(moves.device_k)
    moved = (np.arange(1 << num_paths)[:, None] >> np.arange(num_paths)) & 1 == 1  # (S, P)
    count = moved.sum(axis=1)
    moved_device = np.where(moved, moves.moved_device, 0.0).sum(axis=1)
    after = np.where(moved, moves.moved_after, np.inf).min(axis=1)
    after[count == 0] = -np.inf  # no moved path: X alone
    devices = np.maximum(
        np.where(moved, 0.0, moves.device_k).sum(axis=1) + moved_device + moves.last,
        moved_device + after,
    )
    stay = ~moved[:, None, :] & cut.in_s[None]  # (S, J, P)
    covered = stay.reshape(-1, num_paths).astype(float) @ cut.cover > 0
    union = (covered @ cut.seconds).reshape(stay.shape[:2])
    finite = np.where(np.isfinite(cut.added), cut.added, 0.0)  # inf: such sets cannot be
    per_path, shared = (moved.astype(float) @ a.T for a in finite)  # (S, J)
    gain = np.maximum(per_path / np.maximum(count, 1)[:, None], shared)
    waits = np.where(stay.any(axis=2), moves.head + cut.e[None, :] + union + gain, -np.inf)
    return float(np.min(np.maximum(devices, waits.max(axis=1))))
