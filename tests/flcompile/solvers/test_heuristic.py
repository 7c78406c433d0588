"""Tests for opt's heuristic: neighbour scores equal the simulator's, local search only improves."""

from __future__ import annotations

import numpy as np
import pytest

from flcompile.simulate import makespan
from flcompile.solvers.heuristic import (
    MAX_ROUNDS,
    WINDOW,
    _descend,
    _Neighbourhood,
    _Run,
    heuristic_schedule,
)
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.pareto import pareto_cuts
from flcompile.solvers.random_tables import random_table


def test_neighbour_scores_equal_simulated_finish():
    rng = np.random.default_rng(61)
    for _ in range(120):
        num_paths, num_cuts = int(rng.integers(1, 9)), int(rng.integers(1, 5))
        table = random_table(
            rng, num_paths, num_cuts, int(rng.choice([0, 1, 2, 3])), zero_fraction=0.2
        )
        order = rng.permutation(num_paths)
        run = _Run(table, order, rng.integers(0, num_cuts, num_paths)[order])
        hood = _Neighbourhood([np.arange(num_cuts)] * num_paths, int(rng.integers(1, 6)))
        for moves in (hood.cut_changes(run), hood.reorders(run)):
            if len(moves.start) == 0:
                continue
            scores = run.score(moves)
            for b in range(len(scores)):
                after = run.apply(moves, b)
                assert sorted(after.order.tolist()) == list(range(num_paths))
                if np.isfinite(scores[b]):  # several servers: only the best few are scored
                    assert scores[b] == pytest.approx(after.finish, rel=1e-12)


def test_local_search_never_worsens():
    rng = np.random.default_rng(62)
    for trial in range(30):
        table = random_table(rng, int(rng.integers(2, 20)), 8, trial % 3, similar=trial % 2)
        start = solve_mw(table)
        hood = _Neighbourhood(pareto_cuts(table), WINDOW)
        found = _descend(table, hood, start, MAX_ROUNDS).schedule()
        assert makespan(table, found.order, found.cuts) <= makespan(table, start.order, start.cuts)


def test_heuristic_never_worse_than_its_seed():
    rng = np.random.default_rng(63)
    for trial in range(20):
        table = random_table(rng, int(rng.integers(1, 30)), 10, trial % 3)
        seed = solve_mw(table)
        found = heuristic_schedule(table, pareto_cuts(table), [seed])
        assert makespan(table, found.order, found.cuts) <= makespan(table, seed.order, seed.cuts)
