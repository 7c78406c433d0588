"""Fast schedules for tables too large to solve exactly: constructive candidates + local search.

Candidates: the seeds (MW's schedule), every uniform cut (all paths cut at k) and the fluid
bound's optimal mix of cuts (`flcompile.lower_bound`) spread over the paths; each cut
choice is ordered by Johnson's rule / CDS (`flcompile.solvers.johnson`), with dominated
cuts swapped for their non-dominated replacements. The best `STARTS` candidates (one with
k > 1 edge servers) are improved by local search over three move types: give one path
another cut, swap two paths, move one path to another position (the last two at most
`WINDOW` positions apart). Each round takes the best cut change if one improves the finish
time, else the best swap or move.

A move rewrites a window of positions and leaves the prefix and the rest unchanged, so each
neighbour is scored by running only its window from the current run's state at the window
start (the simulator's vectorised step, all neighbours at once) and then applying the
max-plus map of the unchanged rest (`flcompile.simulate.tail_map`). k > 1 edge servers are
not max-plus: neighbours are ranked by the unlimited edge's map and the servers' remaining
load, and the best `EXACT_RESCORE` are re-run to the end. A chosen move is re-scored with
the simulator before it is accepted. Everything is deterministic.

Under edge-side reuse (`CostTable.reuse`) a path's link seconds depend on the paths before
it, so a move changes the sends after its window too: each neighbour is re-run exactly from
its first changed position, with the held sets of the current run there. The candidates
also include every cut choice in row-major order, where each new part is an L-shape.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from flcompile.costs.table import CostTable, run_link_s
from flcompile.lower_bound import fluid_bound
from flcompile.schedule import Schedule
from flcompile.simulate import (
    advance,
    finish_of,
    fuse_after_tail,
    makespan_batch,
    run_states,
    tail_map,
)
from flcompile.solvers.johnson import cds_orders
from flcompile.solvers.pareto import replacement_cuts

MAX_ROUNDS = 100
WINDOW = 8
STARTS = 3
EXACT_RESCORE = 32
# Under reuse every neighbour is re-run to the end: beyond this many paths, one start and
# REUSE_ROUNDS rounds.
REUSE_FULL_PATHS = 16
REUSE_ROUNDS = 20


def _mix_counts(alphas: tuple[float, ...], total: int) -> np.ndarray:
    """Split `total` paths in proportion to `alphas` (largest remainder, ties to the first)."""
    share = np.asarray(alphas) * total
    counts = np.floor(share).astype(int)
    rest = total - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts


def _candidate_cuts(table: CostTable, seeds: list[Schedule]) -> np.ndarray:
    """(C, P) distinct cut vectors: the seeds', every uniform cut and the fluid bound's mix."""
    num_paths, num_cuts = table.num_paths, table.num_cuts
    rows = [np.asarray(s.cuts) for s in seeds]
    rows += [np.full(num_paths, k) for k in range(num_cuts)]
    fluid = fluid_bound(
        table.device_s.sum(axis=0),
        table.link_s.sum(axis=0),
        table.edge_s.sum(axis=0),
        table.post_fuse_s,
        table.edge_concurrency,
    )
    rows.append(np.repeat(fluid.cuts, _mix_counts(fluid.alphas, num_paths)))
    cuts = np.take_along_axis(replacement_cuts(table).T, np.array(rows), axis=0)
    return np.unique(cuts, axis=0)


def _candidates(table: CostTable, seeds: list[Schedule]) -> tuple[np.ndarray, np.ndarray]:
    """(orders, cuts) of every constructive candidate, both (C, P), cuts indexed by path."""
    paths = np.arange(table.num_paths)
    orders, cuts = [np.asarray(s.order) for s in seeds], [np.asarray(s.cuts) for s in seeds]
    for row in _candidate_cuts(table, seeds):
        costs = (table.device_s[paths, row], table.link_s[paths, row], table.edge_s[paths, row])
        extra = [paths] if table.reuse is not None else []
        for order in [*cds_orders(*costs), *extra]:
            orders.append(order)
            cuts.append(row)
    return np.array(orders), np.array(cuts)


@dataclass
class _Moves:
    """Neighbours of one run, each rewriting positions start .. start + length - 1.

    Attributes:
        start: (B,) first rewritten position.
        length: (B,) number of rewritten positions.
        source: (B, W) the current position whose path fills each slot of the window.
        cut: (B, W) the cut that path takes there (slots from `length` on are unused).
    """

    start: np.ndarray
    length: np.ndarray
    source: np.ndarray
    cut: np.ndarray


class _Neighbourhood:
    """The moves of every run of one table: cut changes, swaps and moves within a window."""

    def __init__(self, options: list[np.ndarray], window: int) -> None:
        self.opt_path = np.concatenate([np.full(len(ks), p) for p, ks in enumerate(options)])
        self.opt_cut = np.concatenate(options)
        num_paths = len(options)
        i, j = np.meshgrid(np.arange(num_paths), np.arange(num_paths), indexing="ij")
        dist = np.abs(i - j)
        swap = (i < j) & (dist <= window)
        move = (dist >= 2) & (dist <= window)  # a move by one position is a swap
        slot = np.arange(min(window, num_paths - 1) + 1)[None, :]
        si, sj = i[swap][:, None], j[swap][:, None]
        # Swap: the window's two ends trade places.
        swap_src = np.where(slot == 0, sj, np.where(slot == sj - si, si, si + slot))
        mi, mj = i[move][:, None], j[move][:, None]
        lo, span = np.minimum(mi, mj), np.abs(mi - mj)
        # Move i -> j: the paths in between shift by one toward i's old place.
        later = np.where(slot == span, mi, lo + slot + 1)
        earlier = np.where(slot == 0, mi, lo + slot - 1)
        move_src = np.where(mi < mj, later, earlier)
        self.source = np.clip(np.concatenate([swap_src, move_src]), 0, num_paths - 1)
        self.start = np.concatenate([si[:, 0], lo[:, 0]])
        self.length = np.concatenate([(sj - si)[:, 0], span[:, 0]]) + 1

    def cut_changes(self, run: _Run) -> _Moves:
        """Every position of `run` taking every other allowed cut of its path."""
        position = np.empty_like(run.order)
        position[run.order] = np.arange(len(run.order))
        pos = position[self.opt_path]
        keep = self.opt_cut != run.run_cuts[pos]
        pos, alt = pos[keep], self.opt_cut[keep]
        return _Moves(pos, np.ones_like(pos), pos[:, None], alt[:, None])

    def reorders(self, run: _Run) -> _Moves:
        """Swaps and moves of `run`'s paths; each path keeps its cut."""
        return _Moves(self.start, self.length, self.source, run.run_cuts[self.source])


class _Run:
    """One schedule in run order, with what scoring its neighbours needs."""

    def __init__(self, table: CostTable, order: np.ndarray, run_cuts: np.ndarray) -> None:
        self.table, self.order, self.run_cuts = table, order, run_cuts
        self.dev = table.device_s[order, run_cuts]
        self.link = run_link_s(table, order[None], self.path_cuts()[None])[0]
        self.edge = table.edge_s[order, run_cuts]
        self.prefix = run_states(table, order, self.path_cuts())
        self.held = None
        if table.reuse is not None:  # held sets before each position
            held = [table.reuse.geometry.initial(1)]
            for p, k in zip(order, run_cuts, strict=True):
                held.append(table.reuse.step(np.array([p]), np.array([k]), held[-1])[1])
            self.held = np.concatenate(held)
        self.finish = float(finish_of(table, self.prefix.fuse[-1:])[0])
        conc = table.edge_concurrency
        # With k > 1 servers the rest is not max-plus: rank by the unlimited edge's map
        # (plus the servers' remaining load), then re-run the best few exactly.
        unlimited = replace(table, edge_concurrency=0) if conc > 1 else table
        self.tail = tail_map(unlimited, self.dev, self.link, self.edge)
        self.edge_left = np.concatenate([np.cumsum(self.edge[::-1])[::-1], [0.0]])

    def path_cuts(self) -> np.ndarray:
        """Cuts indexed by path."""
        cuts = np.empty_like(self.run_cuts)
        cuts[self.order] = self.run_cuts
        return cuts

    def schedule(self) -> Schedule:
        """As a `Schedule`."""
        return Schedule(tuple(int(p) for p in self.order), tuple(int(k) for k in self.path_cuts()))

    def score(self, moves: _Moves) -> np.ndarray:
        """Finish time of every neighbour (up to float rounding; see the module docstring)."""
        table = self.table
        if table.reuse is not None:
            return self._rerun(moves)
        paths = self.order[moves.source]
        used = np.arange(moves.source.shape[1])[None, :] < moves.length[:, None]
        # Slots past a window's end cost nothing; such a step changes no state that matters.
        dev = np.where(used, table.device_s[paths, moves.cut], 0.0)
        link = np.where(used, table.link_s[paths, moves.cut], 0.0)
        edge = np.where(used, table.edge_s[paths, moves.cut], 0.0)
        state = self.prefix.take(moves.start)
        for w in range(dev.shape[1]):
            state = advance(table, state, dev[:, w], link[:, w], edge[:, w])
        end = moves.start + moves.length
        fuse = fuse_after_tail(state, self.tail[end])
        conc = table.edge_concurrency
        if conc <= 1:
            return finish_of(table, fuse)
        fuse = np.maximum(fuse, state.t_edge.mean(axis=1) + self.edge_left[end] / conc)
        best = np.argsort(fuse, kind="stable")[:EXACT_RESCORE]
        state, end = state.take(best), end[best]
        for q in range(int(end.min()), len(self.order)):
            rest = end <= q
            state = advance(
                table,
                state,
                np.where(rest, self.dev[q], 0.0),
                np.where(rest, self.link[q], 0.0),
                np.where(rest, self.edge[q], 0.0),
            )
        scores = np.full(len(fuse), np.inf)
        scores[best] = finish_of(table, state.fuse)
        return scores

    def _rerun(self, moves: _Moves) -> np.ndarray:
        """Finish time of every neighbour, re-run from the first changed position (reuse)."""
        table, count = self.table, len(moves.start)
        order = np.tile(self.order, (count, 1))
        run_cuts = np.tile(self.run_cuts, (count, 1))
        rows = np.arange(count)
        for w in range(moves.source.shape[1]):
            used = np.flatnonzero(w < moves.length)
            slot = moves.start[used] + w
            order[used, slot] = self.order[moves.source[used, w]]
            run_cuts[used, slot] = moves.cut[used, w]
        first = int(moves.start.min())
        state = self.prefix.take(np.full(count, first))
        held = np.repeat(self.held[first : first + 1], count, axis=0)
        for j in range(first, len(self.order)):
            p, k = order[rows, j], run_cuts[rows, j]
            link, held = table.reuse.step(p, k, held)
            state = advance(table, state, table.device_s[p, k], link, table.edge_s[p, k])
        return finish_of(table, state.fuse)

    def apply(self, moves: _Moves, b: int) -> _Run:
        """The run after neighbour b's move."""
        lo, n = int(moves.start[b]), int(moves.length[b])
        order, run_cuts = self.order.copy(), self.run_cuts.copy()
        order[lo : lo + n] = self.order[moves.source[b, :n]]
        run_cuts[lo : lo + n] = moves.cut[b, :n]
        return _Run(self.table, order, run_cuts)


def _descend(table: CostTable, hood: _Neighbourhood, schedule: Schedule, max_rounds: int) -> _Run:
    """Local search from `schedule` over `hood`'s moves; the final run."""
    order = np.asarray(schedule.order)
    run = _Run(table, order, np.asarray(schedule.cuts)[order])
    for _ in range(max_rounds):
        best_score, best_move = np.inf, None
        # Cut changes are cheap to score; reorders are only tried when no cut change helps.
        for neighbours in (hood.cut_changes, hood.reorders):
            moves = neighbours(run)
            if len(moves.start):
                scores = run.score(moves)
                b = int(np.argmin(scores))
                best_score, best_move = float(scores[b]), (moves, b)
                if best_score < run.finish:
                    break
        if best_move is None or not best_score < run.finish:
            break
        after = run.apply(*best_move)
        if not after.finish < run.finish:  # float rounding promised an improvement
            break
        run = after
    return run


def heuristic_schedule(
    table: CostTable, options: list[np.ndarray], seeds: list[Schedule]
) -> Schedule:
    """The best of the constructive candidates after local search; never worse than a seed.

    Args:
        table: the cost table.
        options: per path, its non-dominated cuts.
        seeds: schedules to include as candidates (e.g. MW's).

    Returns:
        The best schedule found.
    """
    orders, cuts = _candidates(table, seeds)
    finish = makespan_batch(table, orders, cuts)
    hood = _Neighbourhood(options, WINDOW)
    best: _Run | None = None
    # Several servers, or reuse on a large grid, make every round re-run the schedule's
    # rest: one start only (and fewer rounds under reuse).
    large_reuse = table.reuse is not None and table.num_paths > REUSE_FULL_PATHS
    starts = STARTS if table.edge_concurrency <= 1 and not large_reuse else 1
    rounds = REUSE_ROUNDS if large_reuse else MAX_ROUNDS
    for b in np.unique(finish, return_index=True)[1][:starts]:
        start = Schedule(tuple(int(p) for p in orders[b]), tuple(int(k) for k in cuts[b]))
        found = _descend(table, hood, start, rounds)
        if best is None or found.finish < best.finish:
            best = found
    return best.schedule()
