"""Tests for opt: equal to BF wherever BF runs, never worse than MW, fast on an 8x8 grid."""

from __future__ import annotations

import time

import numpy as np
import pytest

from flcompile.errors import InternalError
from flcompile.schedule import Schedule
from flcompile.simulate import makespan
from flcompile.solvers.bf import BF_MAX_STATES, bf_search_size, solve_bf
from flcompile.solvers.mw import solve_mw
from flcompile.solvers.opt import solve_opt, solve_opt_proving
from flcompile.solvers.random_tables import random_table


def _finish(table, schedule) -> float:
    return makespan(table, schedule.order, schedule.cuts)


def test_equals_bf_on_random_small_tables():
    rng = np.random.default_rng(21)
    for trial in range(210):
        num_paths, num_cuts = int(rng.integers(1, 7)), int(rng.integers(1, 6))
        concurrency = trial % 3
        table = random_table(
            rng,
            num_paths,
            num_cuts,
            concurrency,
            zero_fraction=0.1 if trial % 5 == 0 else 0.0,
            similar=trial % 2 == 1,
        )
        bf = _finish(table, solve_bf(table))
        assert _finish(table, solve_opt(table)) == pytest.approx(bf, rel=1e-12)


@pytest.mark.parametrize("concurrency", [0, 1, 2])
def test_never_worse_than_mw(concurrency):
    rng = np.random.default_rng(22 + concurrency)
    for num_paths in (1, 2, 5, 9, 16, 25, 40):
        for similar in (False, True):
            table = random_table(rng, num_paths, 12, concurrency, similar=similar)
            opt = _finish(table, solve_opt(table, exact_nodes=2e4))
            assert opt <= _finish(table, solve_mw(table))


def test_deterministic():
    table = random_table(np.random.default_rng(23), 20, 10, 1, similar=True)
    assert solve_opt(table) == solve_opt(table)


def test_budgeted_exact_search_only_improves():
    table = random_table(np.random.default_rng(24), 8, 8, 1, similar=True)
    without = _finish(table, solve_opt(table, exact_nodes=0))
    assert _finish(table, solve_opt(table, exact_nodes=2e4)) <= without


def test_speed_smoke_8x8_grid():
    # A generous bound; real timing belongs in tools/.
    for concurrency in (0, 1):
        table = random_table(np.random.default_rng(25), 64, 30, concurrency, similar=True)
        started = time.perf_counter()
        schedule = solve_opt(table)
        assert time.perf_counter() - started < 2.0
        assert _finish(table, schedule) <= _finish(table, solve_mw(table))


def test_a_schedule_worse_than_mw_is_an_internal_error(monkeypatch):
    # The searches start from MW's schedule; a search that returned a worse one is a bug.
    import flcompile.solvers.opt as opt

    table = random_table(np.random.default_rng(26), 12, 6, 1, similar=True)
    mw = solve_mw(table)
    worse = Schedule(mw.order[::-1], (0,) * table.num_paths)
    assert _finish(table, worse) > _finish(table, mw)
    monkeypatch.setattr(opt, "heuristic_schedule", lambda *_: worse)
    with pytest.raises(InternalError, match="after MW's"):
        solve_opt(table, exact_nodes=0)


def test_proves_the_optimum_only_when_it_has_it():
    rng = np.random.default_rng(24)
    proven_beyond_bf = 0
    for trial in range(24):
        small = trial % 2 == 0
        num_paths, num_cuts = (4, 3) if small else (7, 4)
        table = random_table(rng, num_paths, num_cuts, trial % 3, similar=not small)
        schedule, proven = solve_opt_proving(table)
        assert schedule == solve_opt(table)
        if bf_search_size(table) <= BF_MAX_STATES:
            assert proven  # where BF runs, opt's exact search always completes
        if proven:
            # BF without its size bound runs the same exact search to the end.
            best = solve_bf(table, max_states=np.inf)
            assert _finish(table, schedule) == pytest.approx(_finish(table, best), rel=1e-12)
            proven_beyond_bf += bf_search_size(table) > BF_MAX_STATES
    assert proven_beyond_bf > 0
