"""Tests for BF: equal to plain enumeration, never worse than MW, refuses beyond its bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from enumeration import enumerate_all

from flcompile.costs.table import CostTable
from flcompile.errors import SolverLimitError
from flcompile.simulate import makespan
from flcompile.solvers.bf import BF_MAX_STATES, bf_search_size, solve_bf
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt
from flcompile.solvers.pareto import pareto_cuts
from flcompile.solvers.random_tables import SHARED_ROWS, random_table, table_sharing_rows


def test_equals_plain_enumeration():
    rng = np.random.default_rng(11)
    for trial in range(80):
        num_paths, num_cuts = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        concurrency = trial % 3
        table = random_table(
            rng,
            num_paths,
            num_cuts,
            concurrency,
            zero_fraction=0.15 if trial % 2 else 0.0,
            similar=trial % 4 == 3,
        )
        schedule = solve_bf(table)
        assert makespan(table, schedule.order, schedule.cuts) == pytest.approx(
            enumerate_all(table), rel=1e-12
        )


@pytest.mark.parametrize("shared", SHARED_ROWS)
def test_bf_and_opt_equal_enumeration_when_paths_share_rows(shared: str):
    rng = np.random.default_rng(17 + SHARED_ROWS.index(shared))
    for trial in range(40):
        table = table_sharing_rows(rng, shared, trial % 3)
        best = enumerate_all(table)
        for solver in (solve_bf, solve_opt):
            schedule = solver(table)
            found = makespan(table, schedule.order, schedule.cuts)
            assert found == pytest.approx(best, rel=1e-12), (solver.__name__, trial, schedule)


def test_identical_paths_are_not_lost_to_symmetry_breaking():
    # Four identical paths (a uniform 2x2 grid); the exact search places them in index
    # order only, which must not change the optimum.
    rng = np.random.default_rng(12)
    for concurrency in (0, 1, 2):
        row = random_table(rng, 1, 3, concurrency)
        table = CostTable(
            np.repeat(row.device_s, 4, axis=0),
            np.repeat(row.link_s, 4, axis=0),
            np.repeat(row.edge_s, 4, axis=0),
            row.post_fuse_s,
            concurrency,
        )
        schedule = solve_bf(table)
        assert makespan(table, schedule.order, schedule.cuts) == pytest.approx(
            enumerate_all(table), rel=1e-12
        )


def test_never_worse_than_mw():
    rng = np.random.default_rng(13)
    for trial in range(60):
        table = random_table(rng, int(rng.integers(1, 7)), int(rng.integers(1, 6)), trial % 3)
        bf = solve_bf(table)
        mw = solve_mw(table)
        assert makespan(table, bf.order, bf.cuts) <= makespan(table, mw.order, mw.cuts)


def test_search_size_is_paths_factorial_times_cut_counts():
    table = random_table(np.random.default_rng(14), 5, 4, 1)
    counts = [len(ks) for ks in pareto_cuts(table)]
    assert bf_search_size(table) == pytest.approx(math.factorial(5) * math.prod(counts))


def test_refuses_beyond_its_bound():
    # 13! alone is above the default bound.
    table = random_table(np.random.default_rng(15), 13, 2, 1)
    assert bf_search_size(table) > BF_MAX_STATES
    with pytest.raises(SolverLimitError) as info:
        solve_bf(table)
    message = str(info.value)
    assert "13 paths" in message
    assert "--solver opt" in message
    assert "\n" not in message


def test_max_states_is_honoured():
    table = random_table(np.random.default_rng(16), 4, 3, 1)
    size = bf_search_size(table)
    solve_bf(table, max_states=size)
    with pytest.raises(SolverLimitError):
        solve_bf(table, max_states=size - 1)
