"""Tests for Johnson's rule: optimal for the device->link two-machine flow shop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from flcompile.costs.table import CostTable
from flcompile.simulate import makespan
from flcompile.solvers.johnson import cds_orders, johnson_order


def test_hand_example():
    # Jobs (first, second): 0 (3, 6), 1 (5, 2), 2 (1, 2), 3 (6, 6), 4 (7, 5).
    # first < second: 2 (1), 0 (3) by increasing first; the rest by decreasing second:
    # 3 (6), 4 (5), 1 (2).
    # Should become: 2, 0, 3, 4, 1.
    order = johnson_order(np.array([3.0, 5, 1, 6, 7]), np.array([6.0, 2, 2, 6, 5]))
    assert order.tolist() == [2, 0, 3, 4, 1]


def test_optimal_for_two_machines():
    # Device then link with nothing on the edge is a two-machine flow shop.
    rng = np.random.default_rng(41)
    for _ in range(60):
        jobs = int(rng.integers(1, 7))
        first, second = rng.random((2, jobs))
        table = CostTable(first[:, None], second[:, None], np.zeros((jobs, 1)), 0.0, 0)
        cuts = (0,) * jobs
        best = min(makespan(table, o, cuts) for o in itertools.permutations(range(jobs)))
        assert makespan(table, johnson_order(first, second), cuts) == pytest.approx(best, rel=1e-12)


def test_cds_orders_are_permutations():
    dev, link, edge = np.random.default_rng(42).random((3, 9))
    for order in cds_orders(dev, link, edge):
        assert sorted(order.tolist()) == list(range(9))
