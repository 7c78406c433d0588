"""Exact search over every order and every cut: vectorised depth-first branch and bound.

Shared by `bf` (the reference optimum) and `opt` (on instances small enough to solve exactly).
Nodes are partial schedules (a prefix of the run order with the cuts of its paths); their
children append one more path with one of its non-dominated cuts. Whole batches of nodes
are expanded at once with the simulator's vectorised step, so every leaf is scored exactly
as `flcompile.simulate` would score it. A child is discarded when a valid lower bound on
every completion of it is no better than the incumbent. The search is exact because:

- only Pareto-dominated cuts are skipped (see `flcompile.solvers.pareto`);
- paths whose cost rows are identical are interchangeable, so they are only placed in
  increasing index order (any schedule maps onto such a one with the same finish time);
- the bounds below hold for every completion of a node.

Lower bound of a node (times t_dev, t_link, t_edge and fuse so far, remaining paths R,
each p in R still to pick a cut with costs D_p, L_p, E_p). Let X, Y, Z be the finish-time
lower bounds the device, link and edge give for one completion:

    X = t_dev + Σ_R D_p + min_R (L + E)                  (the last device part's tail)
    Y = max(t_link, t_dev + min_R D) + Σ_R L_p + min_R E  (if every p in R must send; else
        t_link + Σ_R L_p)
    Z = max(t_edge, t_dev + min_R (D + L)) + Σ_R E_p      (serial edge, if every p in R
        needs the edge; else t_edge + Σ_R E_p); mean(server free) + Σ_R E_p / k for k servers;
        absent for an unlimited edge.

For any weights λ in the simplex, max(X, Y, Z) >= λ·(X, Y, Z), and the cut-dependent part
Σ_R (λ_D D_p + λ_L L_p + λ_E E_p) is at least Σ_R min over p's cuts: a Lagrangian form of
the fluid bound, valid for every choice of cuts. The node bound is the max over a fixed
set of λ of that, the fuse so far, and t_dev + max_R min (D + L + E), plus what follows
the fuse. Its per-remaining-set constants are tabulated for all 2^P subsets, hence
`MAX_EXACT_PATHS`. Children are explored best bound first, in chunks that cap memory.

Under edge-side reuse (`CostTable.reuse`) every node also carries, per tensor, the set of
paths that have sent it; a child's link seconds are its new bytes given that set, and the
bounds take each remaining path's fewest possible link seconds (every overlapping path
held), which no completion can undercut. Paths are never interchangeable there.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np

from flcompile.costs.table import CostTable
from flcompile.errors import InternalError
from flcompile.schedule import Schedule
from flcompile.simulate import BatchState, advance, finish_of, initial_state, makespan

log = logging.getLogger(__name__)

MAX_EXACT_PATHS = 16
CHUNK_CHILDREN = 1 << 15


@dataclass(frozen=True)
class ExactResult:
    """What the exact search found.

    Attributes:
        schedule: the best schedule found (the incumbent if nothing better exists).
        finish: its simulated finish time.
        optimal: True when the search completed, so `schedule` is optimal.
        nodes: how many partial schedules were generated.
    """

    schedule: Schedule
    finish: float
    optimal: bool
    nodes: int


def search_size(options: list[np.ndarray]) -> float:
    """Schedules an unpruned search would score: P! × Π_p len(options[p]).

    Args:
        options: per path, the cuts considered.

    Returns:
        The count as a float (inf if it overflows).
    """
    log_size = math.lgamma(len(options) + 1) + sum(math.log(len(ks)) for ks in options)
    return math.exp(log_size) if log_size < 700 else math.inf


def _subset_reduce(values: np.ndarray, empty: float, op: np.ufunc) -> np.ndarray:
    """out[..., mask] = op over the paths p in mask of values[..., p] (empty -> `empty`)."""
    num_paths = values.shape[-1]
    out = np.full((*values.shape[:-1], 1 << num_paths), empty, dtype=float)
    for p in range(num_paths):
        lo = out[..., : 1 << p]
        out[..., 1 << p : 2 << p] = op(lo, values[..., p : p + 1])
    return out


def _weights(three: bool) -> np.ndarray:
    """The λ used in the Lagrangian bound: a lattice on the simplex, vertices included."""
    steps = 6 if three else 12
    rows = [
        (i / steps, j / steps, (steps - i - j) / steps)
        for i, j in itertools.product(range(steps + 1), repeat=2)
        if i + j <= steps and (three or i + j == steps)
    ]
    return np.array(rows)


class _Bounds:
    """Per-remaining-set constants of the node lower bound, indexed by bit mask."""

    def __init__(self, table: CostTable, options: list[np.ndarray]) -> None:
        conc = table.edge_concurrency
        dev = [table.device_s[p, ks] for p, ks in enumerate(options)]
        least_link = table.link_s if table.reuse is None else table.reuse.min_s()
        link = [least_link[p, ks] for p, ks in enumerate(options)]
        edge = [table.edge_s[p, ks] for p, ks in enumerate(options)]
        scale = 1.0 if conc == 0 else 1.0 / conc

        def per_path(fn) -> np.ndarray:
            return np.array([fn(d, lk, e) for d, lk, e in zip(dev, link, edge, strict=True)])

        self.conc = conc
        self.lam = _weights(conc != 0)
        lam = self.lam
        w = np.stack(
            [
                per_path(lambda d, lk, e, a=a, b=b, c=c: np.min(a * d + b * lk + c * scale * e))
                for a, b, c in lam
            ]
        )
        inf = np.inf
        self.weighted = _subset_reduce(w, 0.0, np.add)
        self.weighted[:, 0] = -inf
        self.tail_dev = _subset_reduce(per_path(lambda d, lk, e: np.min(lk + e)), inf, np.minimum)
        self.first_dev = _subset_reduce(per_path(lambda d, lk, e: np.min(d)), inf, np.minimum)
        self.last_edge = _subset_reduce(per_path(lambda d, lk, e: np.min(e)), inf, np.minimum)
        self.first_arrival = _subset_reduce(
            per_path(lambda d, lk, e: np.min(d + lk)), inf, np.minimum
        )
        must_send = per_path(lambda d, lk, e: float(np.min(lk) > 0))
        must_edge = per_path(lambda d, lk, e: float(np.min(e) > 0))
        self.all_send = _subset_reduce(must_send, 1.0, np.minimum) > 0
        self.all_edge = _subset_reduce(must_edge, 1.0, np.minimum) > 0
        self.all_send[0] = self.all_edge[0] = False
        self.single = _subset_reduce(
            per_path(lambda d, lk, e: np.min(d + lk + e)), -inf, np.maximum
        )
        for arr in (self.tail_dev, self.first_dev, self.last_edge, self.first_arrival):
            arr[0] = 0.0
        self.after_fuse = (table.post_fuse_s, table.return_s)

    def __call__(self, state: BatchState, rem: np.ndarray) -> np.ndarray:
        """Lower bounds on the finish time of every completion of each node."""
        t_dev, t_link = state.t_dev, state.t_link
        dev_term = t_dev + self.tail_dev[rem]
        link_term = np.where(
            self.all_send[rem],
            np.maximum(t_link, t_dev + self.first_dev[rem]) + self.last_edge[rem],
            t_link,
        )
        lam = self.lam
        bound = lam[:, :1] * dev_term + lam[:, 1:2] * link_term + self.weighted[:, rem]
        if self.conc == 1:
            edge_term = np.where(
                self.all_edge[rem],
                np.maximum(state.t_edge, t_dev + self.first_arrival[rem]),
                state.t_edge,
            )
            bound += lam[:, 2:] * edge_term
        elif self.conc > 1:
            bound += lam[:, 2:] * state.t_edge.mean(axis=1)
        lb = np.maximum(np.maximum(bound.max(axis=0), state.fuse), t_dev + self.single[rem])
        post, ret = self.after_fuse
        return lb + post + ret


def _symmetry_masks(table: CostTable, options: list[np.ndarray]) -> np.ndarray:
    """prev[p] = bit mask of the lower-index paths with path p's cost rows and options."""
    rows = np.concatenate([table.device_s, table.link_s, table.edge_s], axis=1)
    prev = np.zeros(table.num_paths, dtype=np.int64)
    if table.reuse is not None:  # paths differ in where their regions lie
        return prev
    for p in range(table.num_paths):
        for q in range(p):
            if np.array_equal(rows[p], rows[q]) and np.array_equal(options[p], options[q]):
                prev[p] |= 1 << q
    return prev


@dataclass
class _Chunk:
    """A batch of nodes at one depth: their states, bounds and the options taken so far."""

    state: BatchState
    mask: np.ndarray
    bound: np.ndarray
    taken: np.ndarray  # (n, depth) option ids
    held: np.ndarray | None = None  # (n, T) paths that sent each tensor, under reuse


def branch_and_bound(
    table: CostTable,
    options: list[np.ndarray],
    incumbent: Schedule,
    *,
    node_limit: float = np.inf,
) -> ExactResult:
    """Find a schedule with the least simulated finish time.

    Args:
        table: the cost table.
        options: per path, the cut indices to consider (its non-dominated cuts).
        incumbent: a known schedule (e.g. from a heuristic); returned if nothing beats it.
        node_limit: stop after generating about this many nodes (result then not proven).

    Returns:
        The best schedule found, its finish time, and whether the search completed.

    Raises:
        InternalError: more than MAX_EXACT_PATHS paths, or an empty option list.
    """
    num_paths = table.num_paths
    if num_paths > MAX_EXACT_PATHS:
        raise InternalError(f"exact search asked for {num_paths} > {MAX_EXACT_PATHS} paths")
    if any(len(ks) == 0 for ks in options):
        raise InternalError("exact search got a path without cut options")
    search = _Search(table, options, incumbent)
    complete = search.run(node_limit)
    best, best_finish = search.best, search.best_finish
    finish = makespan(table, best.order, best.cuts)
    if finish != best_finish:
        raise InternalError(f"exact search scored {best_finish} but the simulator gives {finish}")
    return ExactResult(best, best_finish, complete, search.nodes)


class _Search:
    """One branch-and-bound run: the options flattened to one id each, the incumbent and
    how many nodes were generated."""

    def __init__(self, table: CostTable, options: list[np.ndarray], incumbent: Schedule) -> None:
        self.table = table
        self.num_paths = table.num_paths
        self.opt_path = np.concatenate([np.full(len(ks), p) for p, ks in enumerate(options)])
        self.opt_cut = np.concatenate(options)
        self.opt_dev = table.device_s[self.opt_path, self.opt_cut]
        self.opt_link = table.link_s[self.opt_path, self.opt_cut]
        self.opt_edge = table.edge_s[self.opt_path, self.opt_cut]
        self.starts = np.cumsum([0] + [len(ks) for ks in options])
        self.prev_same = _symmetry_masks(table, options)
        self.bounds = _Bounds(table, options)
        self.full = (1 << self.num_paths) - 1
        self.widest = max(len(ks) for ks in options)
        self.best = incumbent
        self.best_finish = makespan(table, incumbent.order, incumbent.cuts)
        self.nodes = 0

    def run(self, node_limit: float) -> bool:
        """Search depth first from the empty schedule; True when it completed."""
        root = _Chunk(
            initial_state(self.table, 1),
            np.zeros(1, dtype=np.int64),
            np.full(1, -np.inf),
            np.zeros((1, 0), dtype=np.int64),
            None if self.table.reuse is None else self.table.reuse.geometry.initial(1),
        )
        stack = [root]
        while stack:
            chunk = stack.pop()
            live = np.flatnonzero(chunk.bound < self.best_finish)
            if live.size == 0:
                continue
            if self.nodes >= node_limit:
                log.debug("exact search stopped at its node limit (%d nodes)", self.nodes)
                return False
            stack.extend(self._expand(chunk, live))
        return True

    def _branch(self, chunk: _Chunk, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every child of the live nodes: its parent's index in `chunk` and its option id.

        A path joins only after the lower-index paths with the same costs and options.
        """
        mask = chunk.mask[live]
        parents, chosen = [], []
        for p in range(self.num_paths):
            prev = self.prev_same[p]
            ok = ((mask >> p) & 1 == 0) & ((mask & prev) == prev)
            sel = live[ok]
            if sel.size:
                lo, hi = self.starts[p], self.starts[p + 1]
                parents.append(np.repeat(sel, hi - lo))
                chosen.append(np.tile(np.arange(lo, hi), sel.size))
        return np.concatenate(parents), np.concatenate(chosen)

    def _expand(self, chunk: _Chunk, live: np.ndarray) -> list[_Chunk]:
        """Score the children of the live nodes; the chunks to push, the best on top."""
        parent, option = self._branch(chunk, live)
        self.nodes += parent.size
        held = None
        if self.table.reuse is None:
            link = self.opt_link[option]
        else:
            link, held = self.table.reuse.step(
                self.opt_path[option], self.opt_cut[option], chunk.held[parent]
            )
        state = advance(
            self.table,
            chunk.state.take(parent),
            self.opt_dev[option],
            link,
            self.opt_edge[option],
        )
        child_mask = chunk.mask[parent] | (np.int64(1) << self.opt_path[option])
        leaves = chunk.taken.shape[1] + 1 == self.num_paths
        if leaves:
            lb = finish_of(self.table, state.fuse)
        else:
            lb = self.bounds(state, self.full ^ child_mask)
        keep = np.flatnonzero(lb < self.best_finish)
        if keep.size == 0:
            return []
        if leaves:  # a complete schedule's bound is its finish time
            i = int(keep[np.argmin(lb[keep])])
            self._record([*chunk.taken[parent[i]], option[i]], float(lb[i]))
            return []
        taken = np.concatenate([chunk.taken[parent[keep]], option[keep, None]], axis=1)
        rank = np.argsort(lb[keep], kind="stable")  # most promising nodes first
        return self._chunks(_Chunk(state, child_mask, lb, taken[rank], held), keep[rank])

    def _record(self, run: list, finish: float) -> None:
        """Make the complete schedule of option ids `run` the incumbent."""
        cuts = [0] * self.num_paths
        for o in run:
            cuts[self.opt_path[o]] = int(self.opt_cut[o])
        self.best = Schedule(tuple(int(self.opt_path[o]) for o in run), tuple(cuts))
        self.best_finish = finish

    def _chunks(self, children: _Chunk, order: np.ndarray) -> list[_Chunk]:
        """`children` in chunks, in push order, the first of `order` on top.

        `order` indexes the children's state, mask and bound; `children.taken` is already
        in that order. Capping the children one chunk expands into bounds the stack's memory.
        """
        depth = children.taken.shape[1]
        size = max(64, CHUNK_CHILDREN // ((self.num_paths - depth) * self.widest))
        chunks = []
        for lo in range(((order.size - 1) // size) * size, -1, -size):
            idx = order[lo : lo + size]
            chunks.append(
                _Chunk(
                    children.state.take(idx),
                    children.mask[idx],
                    children.bound[idx],
                    children.taken[lo : lo + size],
                    None if children.held is None else children.held[idx],
                )
            )
        return chunks
