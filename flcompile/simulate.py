"""The one simulator that scores every plan: the device, FCFS link and edge of docs/design.md §4.

Semantics (the same in `simulate`, `makespan` and the vectorised `advance`):

- Device: the paths' device parts run back to back in schedule order, from time 0.
- Link: one FCFS channel in schedule order. A path's send starts at
  max(device_end, link_free) and takes link_s. A send of 0 s (nothing crosses the cut)
  does not occupy the link: link_start = link_end = device_end; under edge-side reuse
  (`CostTable.waits`) such a path's data are pieces earlier sends carry, so it arrives once
  the link has drained: link_start = link_end = max(device_end, link_free).
- Link seconds under reuse (`CostTable.reuse`) are each path's new bytes given the paths
  before it in the schedule (`flcompile.costs.reuse`).
- Edge: a path's edge part starts once its data has arrived (link_end) and a server is
  free, in schedule order (the paper: "the computation order of the FL paths on the end
  device is the same as the transmission order and the computation order on the ES").
  edge_concurrency 1 = one server, k > 1 = k servers (each path takes the server that is
  free earliest, lowest server on ties), 0 = unlimited (start at link_end, the paper's
  Eq. 4). Like a 0 s send, an edge part of 0 s occupies no server: it "ends" at link_end.
- Fuse: starts at the latest edge_end; finish = fuse_start + post_fuse_s + return_s.

Every quantity is a max or a sum of the inputs, so the finish time is monotone
(non-decreasing) in every device_s, link_s and edge_s entry; the exact solvers' Pareto
pruning relies on that. The scalar and vectorised code perform the same float operations
in the same order, so they agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flcompile.costs.table import CostTable, run_link_s
from flcompile.errors import InternalError
from flcompile.schedule import PathTimes, Schedule, Timeline


def check_schedule(table: CostTable, order: Sequence[int], cuts: Sequence[int]) -> None:
    """Raise unless `order` is a permutation of the paths and every cut is in range.

    Args:
        table: the cost table the schedule is meant for.
        order: path indices in run order.
        cuts: cuts[p] is the cut of path p.

    Raises:
        InternalError: the schedule does not fit the table, or the table has no paths or a
            negative edge_concurrency.
    """
    num_paths, num_cuts = table.num_paths, table.num_cuts
    if num_paths == 0:
        raise InternalError("cost table has no paths")
    if table.edge_concurrency < 0:
        raise InternalError(f"edge_concurrency must be >= 0, got {table.edge_concurrency}")
    if len(order) != num_paths or sorted(int(p) for p in order) != list(range(num_paths)):
        raise InternalError(
            f"schedule order {tuple(order)} is not a permutation of the {num_paths} paths"
        )
    if len(cuts) != num_paths:
        raise InternalError(f"schedule has {len(cuts)} cuts for {num_paths} paths")
    for p, k in enumerate(cuts):
        if not 0 <= int(k) < num_cuts:
            raise InternalError(f"cut {k} of path {p} is outside 0..{num_cuts - 1}")


def send(
    device_end: float, link_free: float, link_s: float, waits: bool = False
) -> tuple[float, float, float]:
    """One path's send on the FCFS link (scalar).

    Args:
        device_end: when the path's device part ends.
        link_free: when the link becomes free.
        link_s: the send's seconds; 0 means nothing is sent and the link stays free.
        waits: a send of 0 s arrives when the link has drained (edge-side reuse).

    Returns:
        (link_start, link_end, new link_free).
    """
    if link_s > 0:
        start = max(device_end, link_free)
        return start, start + link_s, start + link_s
    if waits:
        start = max(device_end, link_free)
        return start, start, link_free
    return device_end, device_end, link_free


def _run(
    table: CostTable,
    order: Sequence[int],
    cuts: Sequence[int],
    record: bool,
    states: list[tuple[float, float, list[float], float]] | None = None,
) -> tuple[float, float, list[PathTimes]]:
    """Scalar timeline: (fuse_start, finish, per-path times if `record`).

    If `states` is a list, the state (t_dev, t_link, edge servers, fuse) before each path and
    after the last one is appended to it.
    """
    check_schedule(table, order, cuts)
    dev, link, edge = table.device_s, table.link_s, table.edge_s
    conc = table.edge_concurrency
    servers = [0.0] * max(conc, 1)
    t_dev = t_link = fuse = 0.0
    times: list[PathTimes] = []
    reused = None
    if table.reuse is not None:
        reused = run_link_s(table, np.asarray([order]), np.asarray([cuts]))[0]
    for j, p in enumerate(order):
        if states is not None:
            states.append((t_dev, t_link, servers.copy(), fuse))
        p = int(p)
        k = int(cuts[p])
        d, lk, e = float(dev[p, k]), float(link[p, k]), float(edge[p, k])
        if reused is not None:
            lk = float(reused[j])
        d_start = t_dev
        t_dev = d_start + d
        l_start, l_end, t_link = send(t_dev, t_link, lk, table.waits)
        if conc == 0 or not e > 0:
            e_start = l_end
        elif conc == 1:
            e_start = max(l_end, servers[0])
        else:
            i = min(range(conc), key=servers.__getitem__)
            e_start = max(l_end, servers[i])
        e_end = e_start + e
        if conc and e > 0:
            servers[0 if conc == 1 else i] = e_end
        fuse = max(fuse, e_end)
        if record:
            times.append(PathTimes(p, d_start, t_dev, l_start, l_end, e_start, e_end))
    if states is not None:
        states.append((t_dev, t_link, servers.copy(), fuse))
    return fuse, fuse + table.post_fuse_s + table.return_s, times


def simulate(table: CostTable, schedule: Schedule) -> Timeline:
    """Simulate a schedule on the device, the FCFS link and the edge.

    Args:
        table: per-path, per-cut seconds and the edge model.
        schedule: the run order of the paths and each path's cut.

    Returns:
        The timeline: per-path times in run order, the fuse start and the finish time.

    Raises:
        InternalError: the schedule is not a permutation of the paths or a cut is out of range.
    """
    fuse, finish, times = _run(table, schedule.order, schedule.cuts, record=True)
    return Timeline(paths=tuple(times), fuse_start=fuse, finish=finish)


def makespan(table: CostTable, order: Sequence[int], cuts: Sequence[int]) -> float:
    """The finish time `simulate` gives, without building the timeline (for inner loops).

    Args:
        table: per-path, per-cut seconds and the edge model.
        order: path indices in run order.
        cuts: cuts[p] is the cut of path p.

    Returns:
        The predicted latency in seconds.

    Raises:
        InternalError: the schedule does not fit the table.
    """
    return _run(table, order, cuts, record=False)[1]


def run_states(table: CostTable, order: Sequence[int], cuts: Sequence[int]) -> BatchState:
    """The resource state before each position of one schedule and after its last path.

    Args:
        table: per-path, per-cut seconds and the edge model.
        order: path indices in run order.
        cuts: cuts[p] is the cut of path p.

    Returns:
        A batch of P + 1 states: entry j is the state before position j (entry P: at the end).

    Raises:
        InternalError: the schedule does not fit the table.
    """
    states: list[tuple[float, float, list[float], float]] = []
    _run(table, order, cuts, record=False, states=states)
    t_dev, t_link, servers, fuse = (np.array(x) for x in zip(*states, strict=True))
    conc = table.edge_concurrency
    edge = None if conc == 0 else (servers[:, 0].copy() if conc == 1 else servers)
    return BatchState(t_dev, t_link, edge, fuse)


@dataclass
class BatchState:
    """Resource state after a prefix of a schedule, for a batch of B partial schedules.

    Attributes:
        t_dev: (B,) when the device becomes free.
        t_link: (B,) when the link becomes free.
        t_edge: (B,) when the serial edge is free, (B, k) per server, or None if unlimited.
        fuse: (B,) the latest edge end so far.
    """

    t_dev: np.ndarray
    t_link: np.ndarray
    t_edge: np.ndarray | None
    fuse: np.ndarray

    def take(self, index: np.ndarray | slice) -> BatchState:
        """The states at `index` (a copy for fancy indices, a view for slices)."""
        edge = None if self.t_edge is None else self.t_edge[index]
        return BatchState(self.t_dev[index], self.t_link[index], edge, self.fuse[index])


def initial_state(table: CostTable, size: int) -> BatchState:
    """`size` copies of the empty schedule's state (everything free at time 0).

    Args:
        table: gives the edge model (number of servers).
        size: batch size B.

    Returns:
        The state before any path has run.
    """
    conc = table.edge_concurrency
    zeros = np.zeros(size)
    edge = None if conc == 0 else (zeros.copy() if conc == 1 else np.zeros((size, conc)))
    return BatchState(zeros, zeros.copy(), edge, zeros.copy())


def advance(
    table: CostTable, state: BatchState, dev: np.ndarray, link: np.ndarray, edge: np.ndarray
) -> BatchState:
    """Run one more path in every schedule of the batch (vectorised `simulate` step).

    Args:
        table: gives the edge model.
        state: the batch's state after its prefixes; not modified.
        dev: (B,) device seconds of the path each schedule runs next.
        link: (B,) its link seconds.
        edge: (B,) its edge seconds.

    Returns:
        The batch's state after that path.
    """
    t_dev = state.t_dev + dev
    sends = link > 0
    idle = np.maximum(t_dev, state.t_link) if table.waits else t_dev
    link_end = np.where(sends, np.maximum(t_dev, state.t_link) + link, idle)
    t_link = np.where(sends, link_end, state.t_link)
    conc = table.edge_concurrency
    busy = edge > 0
    t_edge = state.t_edge
    if conc == 0:
        edge_end = link_end + edge
    elif conc == 1:
        edge_end = np.where(busy, np.maximum(link_end, t_edge), link_end) + edge
        t_edge = np.where(busy, edge_end, t_edge)
    else:
        rows = np.arange(len(t_dev))
        server = np.argmin(t_edge, axis=1)
        free = t_edge[rows, server]
        edge_end = np.where(busy, np.maximum(link_end, free), link_end) + edge
        t_edge = t_edge.copy()
        t_edge[rows, server] = np.where(busy, edge_end, free)
    return BatchState(t_dev, t_link, t_edge, np.maximum(state.fuse, edge_end))


def finish_of(table: CostTable, fuse: np.ndarray) -> np.ndarray:
    """Finish times from fuse start times (same arithmetic as `simulate`)."""
    return fuse + table.post_fuse_s + table.return_s


def makespan_batch(table: CostTable, orders: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Finish times of B complete schedules at once; equal to `makespan` for each row.

    Args:
        table: per-path, per-cut seconds and the edge model.
        orders: (B, P) path indices in run order, one schedule per row.
        cuts: (B, P) cuts indexed by path: cuts[b, p] is the cut of path p in schedule b.

    Returns:
        (B,) finish times.

    Raises:
        InternalError: the arrays do not have shape (B, P).
    """
    orders = np.asarray(orders, dtype=np.intp)
    cuts = np.asarray(cuts, dtype=np.intp)
    num_paths = table.num_paths
    if orders.ndim != 2 or orders.shape[1] != num_paths or cuts.shape != orders.shape:
        raise InternalError(
            f"batch of schedules must be (B, {num_paths}) orders and cuts, "
            f"got {orders.shape} and {cuts.shape}"
        )
    run_cuts = np.take_along_axis(cuts, orders, axis=1)
    dev = table.device_s[orders, run_cuts].T
    link = run_link_s(table, orders, cuts).T
    edge = table.edge_s[orders, run_cuts].T
    state = initial_state(table, len(orders))
    for j in range(num_paths):
        state = advance(table, state, dev[j], link[j], edge[j])
    return finish_of(table, state.fuse)


def tail_map(table: CostTable, dev: np.ndarray, link: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """The fuse start as a max-plus function of the state before each position of one run.

    With one or unlimited edge servers every step is a max or a sum, so running the paths
    at positions j..n-1 from a state s ends with
    fuse = max(s.fuse, s.t_dev + a_j, s.t_link + b_j, s.t_edge + c_j) (c_j = -inf when the
    edge is unlimited). Local search uses it to score a changed window without re-running
    the unchanged rest. Float results can differ from `simulate` in the last bit (sums are
    associated differently).

    Args:
        table: gives the edge model; edge_concurrency must be 0 or 1.
        dev: (n,) device seconds of the path at each position.
        link: (n,) its link seconds.
        edge: (n,) its edge seconds.

    Returns:
        (n + 1, 3) rows (a_j, b_j, c_j); row n is all -inf (nothing left to run).

    Raises:
        InternalError: edge_concurrency > 1 (the server choice is not max-plus).
    """
    conc = table.edge_concurrency
    if conc > 1:
        raise InternalError(f"tail_map needs edge_concurrency 0 or 1, got {conc}")
    ninf = -np.inf
    coef = np.full((len(dev) + 1, 3), ninf)
    a = b = c = ninf
    for j in range(len(dev) - 1, -1, -1):
        d, lk, e = float(dev[j]), float(link[j]), float(edge[j])
        # Each time after position j as (coefficient of t_dev, of t_link, of t_edge).
        # A send of 0 s arrives at t_dev' (or once the link drains, if it waits).
        idle = (d, 0.0 if table.waits else ninf, ninf)
        sent = (d + lk, lk, ninf) if lk > 0 else idle
        link_free = sent if lk > 0 else (ninf, 0.0, ninf)
        if conc == 0 or not e > 0:
            done = (sent[0] + e, sent[1] + e, ninf)
            edge_free = (ninf, ninf, 0.0)
        else:
            done = (sent[0] + e, sent[1] + e, e)
            edge_free = done
        # After j: fuse = max(fuse, done, t_dev' + a, t_link' + b, t_edge' + c) with
        # t_dev' = t_dev + d; collect the coefficients of t_dev, t_link and t_edge.
        a, b, c = (
            max(d + a, link_free[0] + b, edge_free[0] + c, done[0]),
            max(link_free[1] + b, edge_free[1] + c, done[1]),
            max(link_free[2] + b, edge_free[2] + c, done[2]),
        )
        coef[j] = a, b, c
    if conc == 0:
        coef[:, 2] = ninf
    return coef


def fuse_after_tail(state: BatchState, coef: np.ndarray) -> np.ndarray:
    """Apply `tail_map` rows to a batch of states: the fuse start after the rest runs.

    Args:
        state: (B,) states, each before the position whose row is given.
        coef: (B, 3) the `tail_map` rows of those positions.

    Returns:
        (B,) fuse start times.
    """
    out = np.maximum(state.fuse, state.t_dev + coef[:, 0])
    out = np.maximum(out, state.t_link + coef[:, 1])
    if state.t_edge is not None and state.t_edge.ndim == 1:
        out = np.maximum(out, state.t_edge + coef[:, 2])
    return out
