"""Solvers under edge-side reuse: BF and opt equal plain enumeration with the simulator's
order-dependent link, MW and the heuristic plan under it, and the simulator's scalar and
batch forms agree."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from flcompile.costs.table import CostTable
from flcompile.schedule import Schedule
from flcompile.simulate import makespan, makespan_batch, simulate
from flcompile.solvers.bf import solve_bf
from flcompile.solvers.heuristic import heuristic_schedule
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt
from flcompile.solvers.pareto import pareto_cuts
from flcompile.solvers.random_tables import random_reuse_table

GRIDS = ((1, 2), (2, 2), (1, 3), (2, 1), (3, 1))


def every_schedule(table: CostTable) -> tuple[np.ndarray, np.ndarray]:
    paths, cuts = range(table.num_paths), range(table.num_cuts)
    pairs = [
        (order, c)
        for order in itertools.permutations(paths)
        for c in itertools.product(cuts, repeat=table.num_paths)
    ]
    return np.array([o for o, _ in pairs]), np.array([c for _, c in pairs])


@pytest.mark.parametrize("seed", range(24))
def test_bf_and_opt_equal_enumeration(seed):
    rng = np.random.default_rng(seed)
    table = random_reuse_table(rng, GRIDS[seed % len(GRIDS)], int(rng.integers(2, 4)), seed % 3)
    orders, cuts = every_schedule(table)
    finish = makespan_batch(table, orders, cuts)
    best = float(finish.min())
    mw = solve_mw(table)
    for schedule in (solve_bf(table), solve_opt(table)):
        assert makespan(table, schedule.order, schedule.cuts) == pytest.approx(best, rel=1e-12)
    assert makespan(table, mw.order, mw.cuts) >= best - 1e-12


@pytest.mark.parametrize("seed", range(6))
def test_scalar_and_batch_simulators_agree(seed):
    rng = np.random.default_rng(100 + seed)
    table = random_reuse_table(rng, (2, 3), 3, seed % 3)
    orders = np.array([rng.permutation(6) for _ in range(20)])
    cuts = rng.integers(0, 3, (20, 6))
    batch = makespan_batch(table, orders, cuts)
    for b in range(20):
        schedule = Schedule(tuple(orders[b]), tuple(cuts[b]))
        assert makespan(table, orders[b], cuts[b]) == batch[b]
        assert simulate(table, schedule).finish == batch[b]


def test_raw_cuts_send_the_union_of_the_input_regions():
    rng = np.random.default_rng(5)
    table = random_reuse_table(rng, (2, 2), 2, 1)
    geometry = table.reuse.geometry
    cuts = np.zeros((2, 4), int)
    orders = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    sent = geometry.run_bytes(orders, cuts)
    full = [geometry.piece_bytes(p, 0, 0) for p in range(4)]  # nothing held: everything
    assert sent[0, 0] == full[0] and sent[1, 0] == full[3]
    # Whatever the order, raw-input cuts send the union of the regions of tensor 0 once
    # (up to the pieces' re-sent pixels, which only covers that are not exact add).
    regions = geometry.regions[0]
    union = np.zeros((regions[:, 1].max(), regions[:, 3].max()), bool)
    for h0, h1, w0, w1 in regions:
        union[h0:h1, w0:w1] = True
    per_pixel = geometry.bytes_per_pixel[0]
    assert (sent.sum(axis=1) >= union.sum() * per_pixel - 1e-9).all()
    assert (sent <= np.array([[full[p] for p in o] for o in orders]) + 1e-9).all()
    assert (sent.sum(axis=1) <= sum(full) + 1e-9).all()


def test_pareto_keeps_cuts_that_send_other_tensors():
    rng = np.random.default_rng(3)
    table = random_reuse_table(rng, (1, 3), 3, 1)
    crossing = table.reuse.geometry.crossing
    distinct = len({tuple(row) for row in crossing})
    assert all(len(ks) >= distinct for ks in pareto_cuts(table))


def test_heuristic_is_never_worse_than_its_seed():
    rng = np.random.default_rng(9)
    table = random_reuse_table(rng, (3, 3), 3, 1)
    mw = solve_mw(table)
    found = heuristic_schedule(table, pareto_cuts(table), [mw])
    assert makespan(table, found.order, found.cuts) <= makespan(table, mw.order, mw.cuts)
