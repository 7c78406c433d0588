"""Tests for the one simulator: hand-computed timelines and agreement of its scalar/batch forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from flcompile.costs.table import CostTable
from flcompile.errors import InternalError
from flcompile.schedule import Schedule
from flcompile.simulate import (
    BatchState,
    advance,
    fuse_after_tail,
    initial_state,
    makespan,
    makespan_batch,
    run_states,
    simulate,
    tail_map,
)
from flcompile.solvers.random_tables import random_table


def _times(timeline):
    return [
        (t.path, t.device_start, t.device_end, t.link_start, t.link_end, t.edge_start, t.edge_end)
        for t in timeline.paths
    ]


def _queueing_table(concurrency: int) -> CostTable:
    # Three paths, two cuts each; the schedule below uses
    #   path 1 cut 0: D 0, L 2, E 3
    #   path 0 cut 1: D 2, L 1, E 2
    #   path 2 cut 0: D 0, L 2, E 1
    device = np.array([[0.0, 2.0], [0.0, 1.0], [0.0, 3.0]])
    link = np.array([[4.0, 1.0], [2.0, 2.0], [2.0, 1.0]])
    edge = np.array([[3.0, 2.0], [3.0, 1.0], [1.0, 0.0]])
    return CostTable(device, link, edge, 0.5, concurrency, return_s=0.25)


QUEUEING = Schedule(order=(1, 0, 2), cuts=(1, 0, 0))


def test_serial_edge_hand_computed():
    # Timeline (serial edge, one FCFS link):
    #   path 1: device 0-0, link 0-2, edge 2-5
    #   path 0: device 0-2, link 2-3 (link free at 2), edge 5-7 (waits for the edge)
    #   path 2: device 2-2, link 3-5 (waits for the link), edge 7-8 (waits for the edge)
    # Should give: fuse at 8, finish 8 + 0.5 post + 0.25 return = 8.75.
    timeline = simulate(_queueing_table(1), QUEUEING)
    assert _times(timeline) == [
        (1, 0.0, 0.0, 0.0, 2.0, 2.0, 5.0),
        (0, 0.0, 2.0, 2.0, 3.0, 5.0, 7.0),
        (2, 2.0, 2.0, 3.0, 5.0, 7.0, 8.0),
    ]
    assert timeline.fuse_start == 8.0
    assert timeline.finish == 8.75


def test_unlimited_edge_hand_computed():
    # Same device and link as the serial case; every edge part starts on arrival:
    #   path 1 edge 2-5, path 0 edge 3-5, path 2 edge 5-6.
    # Should give: fuse at 6, finish 6.75.
    timeline = simulate(_queueing_table(0), QUEUEING)
    assert [(t.edge_start, t.edge_end) for t in timeline.paths] == [(2, 5), (3, 5), (5, 6)]
    assert timeline.fuse_start == 6.0
    assert timeline.finish == 6.75


def test_serial_unlimited_and_two_servers_differ():
    # Three raw-input sends of 1 s each (links 0-1, 1-2, 2-3), then 5 s of edge work each.
    #   serial:    edge 1-6, 6-11, 11-16            -> fuse 16
    #   unlimited: edge 1-6, 2-7, 3-8               -> fuse 8
    #   2 servers: A 1-6, B 2-7, path 2 waits for A -> 6-11, fuse 11
    # Should give finishes 16.5, 8.5 and 11.5 (post 0.5).
    ones = np.ones((3, 1))
    expected = {1: (16.5, [(1, 6), (6, 11), (11, 16)]), 0: (8.5, [(1, 6), (2, 7), (3, 8)])}
    expected[2] = (11.5, [(1, 6), (2, 7), (6, 11)])
    for concurrency, (finish, edges) in expected.items():
        table = CostTable(0 * ones, ones, 5 * ones, 0.5, concurrency)
        timeline = simulate(table, Schedule((0, 1, 2), (0, 0, 0)))
        assert timeline.finish == finish
        assert [(t.edge_start, t.edge_end) for t in timeline.paths] == edges


def test_zero_send_and_zero_edge_occupy_nothing():
    # Path 0: D 1, L 0 (sends nothing), E 1 -> device 0-1, link 1-1, edge 1-2.
    # Path 1: D 1, L 3, E 0             -> device 1-2, link 2-5 (not delayed), edge 5-5.
    # Path 2: D 0, L 1, E 4             -> link 5-6, edge 6-10.
    # Path 3: D 0, L 1, E 0 (serial edge busy until 10) -> link 6-7, edge 7-7 (no wait).
    # Should give: fuse at 10.
    device = np.array([[1.0], [1.0], [0.0], [0.0]])
    link = np.array([[0.0], [3.0], [1.0], [1.0]])
    edge = np.array([[1.0], [0.0], [4.0], [0.0]])
    timeline = simulate(CostTable(device, link, edge, 0.0, 1), Schedule((0, 1, 2, 3), (0,) * 4))
    assert _times(timeline) == [
        (0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0),
        (1, 1.0, 2.0, 2.0, 5.0, 5.0, 5.0),
        (2, 2.0, 2.0, 5.0, 6.0, 6.0, 10.0),
        (3, 2.0, 2.0, 6.0, 7.0, 7.0, 7.0),
    ]
    assert timeline.finish == 10.0


@pytest.mark.parametrize(
    ("order", "cuts"),
    [((0, 1), (0, 0, 0)), ((0, 0, 1), (0, 0, 0)), ((0, 1, 3), (0, 0, 0)), ((0, 1, 2), (0, 2, 0))],
)
def test_invalid_schedules_raise(order, cuts):
    table = random_table(np.random.default_rng(0), 3, 2, 1)
    with pytest.raises(InternalError):
        simulate(table, Schedule(order, cuts))
    with pytest.raises(InternalError):
        makespan(table, order, cuts)


def _random_cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        num_paths, num_cuts = int(rng.integers(1, 8)), int(rng.integers(1, 6))
        concurrency = int(rng.choice([0, 1, 2, 3]))
        table = random_table(rng, num_paths, num_cuts, concurrency, zero_fraction=0.2)
        yield rng, table


def test_makespan_and_batch_agree_with_simulate():
    for rng, table in _random_cases(300, seed=1):
        num_paths, num_cuts = table.num_paths, table.num_cuts
        orders = np.array([rng.permutation(num_paths) for _ in range(5)])
        cuts = rng.integers(0, num_cuts, (5, num_paths))
        batch = makespan_batch(table, orders, cuts)
        for b in range(5):
            finish = simulate(table, Schedule(tuple(orders[b]), tuple(cuts[b]))).finish
            assert makespan(table, orders[b], cuts[b]) == finish
            assert batch[b] == finish


def test_run_states_follow_the_timeline():
    for rng, table in _random_cases(100, seed=2):
        order = rng.permutation(table.num_paths)
        cuts = rng.integers(0, table.num_cuts, table.num_paths)
        timeline = simulate(table, Schedule(tuple(order), tuple(cuts)))
        states = run_states(table, order, cuts)
        assert states.t_dev[0] == 0.0
        assert list(states.t_dev[1:]) == [t.device_end for t in timeline.paths]
        assert states.fuse[-1] == timeline.fuse_start


def test_tail_map_matches_running_the_rest_from_any_state():
    for rng, table in _random_cases(200, seed=3):
        if table.edge_concurrency > 1:
            continue
        order = rng.permutation(table.num_paths)
        cuts = rng.integers(0, table.num_cuts, table.num_paths)[order]
        dev, link, edge = (a[order, cuts] for a in (table.device_s, table.link_s, table.edge_s))
        coef = tail_map(table, dev, link, edge)
        for j in range(table.num_paths + 1):
            # An arbitrary state (not one this run reaches) before position j.
            start = BatchState(
                rng.random(1) * 3,
                rng.random(1) * 3,
                None if table.edge_concurrency == 0 else rng.random(1) * 3,
                rng.random(1) * 3,
            )
            state = start
            for q in range(j, table.num_paths):
                state = advance(table, state, dev[q : q + 1], link[q : q + 1], edge[q : q + 1])
            expected = state.fuse[0]
            got = fuse_after_tail(start, coef[j : j + 1])[0]
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_tail_map_refuses_several_servers():
    with pytest.raises(InternalError):
        tail_map(random_table(np.random.default_rng(0), 2, 2, 2), *np.ones((3, 2)))


def test_finish_is_monotone_in_every_cost():
    # The Pareto pruning of the exact solvers relies on this.
    for rng, table in _random_cases(150, seed=4):
        order = rng.permutation(table.num_paths)
        cuts = rng.integers(0, table.num_cuts, table.num_paths)
        before = makespan(table, order, cuts)
        for name in ("device_s", "link_s", "edge_s"):
            grown = {n: getattr(table, n).copy() for n in ("device_s", "link_s", "edge_s")}
            p = int(rng.integers(table.num_paths))
            grown[name][p, cuts[p]] += rng.random() * rng.choice([1e-9, 1.0])
            bigger = CostTable(
                **grown, post_fuse_s=table.post_fuse_s, edge_concurrency=table.edge_concurrency
            )
            assert makespan(bigger, order, cuts) >= before


def test_initial_state_shapes():
    for concurrency, shape in ((0, None), (1, (4,)), (3, (4, 3))):
        table = CostTable(*np.zeros((3, 1, 1)), 0.0, concurrency)
        state = initial_state(table, 4)
        assert (None if state.t_edge is None else state.t_edge.shape) == shape


def test_batch_rejects_bad_shapes():
    table = random_table(np.random.default_rng(0), 3, 2, 1)
    with pytest.raises(InternalError):
        makespan_batch(table, np.zeros((2, 2), int), np.zeros((2, 2), int))


def _flow_shop_finish(table: CostTable, order, cuts) -> float:
    """The textbook 3-machine permutation flow shop (device, link, edge), for sends and edge
    parts of positive length: C[i][m] = max(C[i-1][m], C[i][m-1]) + p[i][m]. With an
    unlimited edge, each edge part starts as soon as its data has arrived."""
    done = [0.0, 0.0, 0.0]
    fuse = 0.0
    for p in order:
        k = cuts[p]
        costs = (table.device_s[p, k], table.link_s[p, k], table.edge_s[p, k])
        ready = 0.0
        for m, cost in enumerate(costs):
            if m == 2 and table.edge_concurrency == 0:
                done[m] = ready + cost
            else:
                done[m] = max(done[m], ready) + cost
            ready = done[m]
        fuse = max(fuse, done[2])
    return fuse + table.post_fuse_s + table.return_s


@pytest.mark.parametrize("concurrency", [0, 1])
def test_every_permutation_matches_the_flow_shop_recurrence(concurrency):
    # Three cuts, none the last, so every send and edge part takes time.
    table = random_table(np.random.default_rng(5), 4, 3, concurrency)
    cuts = (1, 0, 1, 0)
    assert np.all(table.link_s[:, :2] > 0) and np.all(table.edge_s[:, :2] > 0)
    finishes = set()
    for order in itertools.permutations(range(4)):
        finish = makespan(table, order, cuts)
        assert finish == pytest.approx(_flow_shop_finish(table, order, cuts), rel=1e-12)
        finishes.add(round(finish, 12))
    assert len(finishes) > 1  # the order matters on this table
