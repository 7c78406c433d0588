"""Tests for the exact branch and bound shared by BF and opt."""

from __future__ import annotations

import numpy as np
import pytest

from flcompile.errors import InternalError
from flcompile.simulate import makespan
from flcompile.solvers.exact import MAX_EXACT_PATHS, branch_and_bound, search_size
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.pareto import pareto_cuts
from flcompile.solvers.random_tables import random_table


def test_node_limit_returns_a_valid_unproven_schedule():
    table = random_table(np.random.default_rng(51), 7, 6, 1)
    seed = solve_mw(table)
    result = branch_and_bound(table, pareto_cuts(table), seed, node_limit=1000)
    assert not result.optimal
    assert result.finish == makespan(table, result.schedule.order, result.schedule.cuts)
    assert result.finish <= makespan(table, seed.order, seed.cuts)


def test_completed_search_is_proven_and_at_most_the_seed():
    rng = np.random.default_rng(52)
    for concurrency in (0, 1, 2, 3):
        table = random_table(rng, 5, 4, concurrency, zero_fraction=0.1)
        seed = solve_mw(table)
        result = branch_and_bound(table, pareto_cuts(table), seed)
        assert result.optimal
        assert result.finish <= makespan(table, seed.order, seed.cuts)


def test_search_size():
    assert search_size([np.arange(3), np.arange(2)]) == pytest.approx(2 * 3 * 2)
    assert search_size([np.arange(30)] * 200) == float("inf")


def test_refuses_too_many_paths():
    table = random_table(np.random.default_rng(53), MAX_EXACT_PATHS + 1, 2, 1)
    with pytest.raises(InternalError):
        branch_and_bound(table, pareto_cuts(table), solve_mw(table))
