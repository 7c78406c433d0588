"""The space bound: below the exact optimum of every table (BF), exact where it must be, and
its minimum over a space computed lazily equals the minimum of every table's bound."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from enumeration import enumerate_all

from flcompile.costs.table import CostTable
from flcompile.errors import InternalError
from flcompile.simulate import makespan
from flcompile.solvers.bf import solve_bf
from flcompile.solvers.random_tables import (
    SHARED_ROWS,
    random_reuse_table,
    random_table,
    table_sharing_rows,
)
from flcompile.space_bound import BoundInput, SpaceBound, _Group, input_bound, table_bound


def optimum(table: CostTable) -> float:
    schedule = solve_bf(table)
    return makespan(table, schedule.order, schedule.cuts)


def random_tables(seed: int, count: int, max_paths: int = 6):
    """Random tables of every edge model (0, 1 and 2 servers), some with zero sends and
    zero edge parts, some with near-identical paths (like one grid's tiles)."""
    rng = np.random.default_rng(seed)
    for trial in range(count):
        num_paths, num_cuts = int(rng.integers(1, max_paths + 1)), int(rng.integers(1, 6))
        yield random_table(
            rng,
            num_paths,
            num_cuts,
            trial % 3,
            zero_fraction=0.15 if trial % 2 else 0.0,
            similar=trial % 4 == 3,
        )


def test_bound_is_below_the_optimum_of_every_random_table():
    ratios = {0: [], 1: [], 2: []}
    for table in random_tables(seed=31, count=450):
        best = optimum(table)
        bound = table_bound(table)
        assert bound <= best * (1 + 1e-12), (table.edge_concurrency, bound, best)
        ratios[table.edge_concurrency].append(best / bound)
    # Tightness (docs/design.md §4): optimal on about half of them, a few % off on average.
    for concurrency, r in ratios.items():
        assert np.median(r) < 1.02 and np.mean(r) < 1.1, (concurrency, np.mean(r))


def test_bound_is_below_plain_enumeration():
    for table in random_tables(seed=32, count=90, max_paths=4):
        assert table_bound(table) <= enumerate_all(table) * (1 + 1e-12)


@pytest.mark.parametrize("shared", SHARED_ROWS)
def test_bound_is_below_the_optimum_when_paths_share_rows(shared: str):
    rng = np.random.default_rng(33 + SHARED_ROWS.index(shared))
    for trial in range(30):
        table = table_sharing_rows(rng, shared, trial % 3)
        assert table_bound(table) <= optimum(table) * (1 + 1e-12), (shared, trial)


def test_one_path_is_exact():
    for table in random_tables(seed=34, count=30, max_paths=1):
        assert table_bound(table) == pytest.approx(optimum(table), rel=1e-12)


def test_identical_paths_with_one_cut_are_exact_on_the_busiest_stage():
    # Graph: P copies of one job (D, L, E) with one cut. A serial flow shop of identical
    # jobs finishes at D + L + E + (P - 1) * max(D, L, E): the bound's head + sum + tail.
    for d, lk, e in [(1.0, 3.0, 0.5), (2.0, 1.0, 0.5), (0.5, 1.0, 2.0)]:
        table = CostTable(
            np.full((5, 1), d), np.full((5, 1), lk), np.full((5, 1), e), 0.25, edge_concurrency=1
        )
        assert table_bound(table) == pytest.approx(optimum(table), rel=1e-12)


def fine_lattice(num_terms: int, steps: int = 60) -> np.ndarray:
    """Every λ on the simplex whose entries are multiples of 1/steps."""
    rows = [c for c in itertools.product(range(steps + 1), repeat=num_terms) if sum(c) == steps]
    return np.array(rows, dtype=float) / steps


def test_maximum_over_weights_is_reached():
    # The cutting planes end at the max of LB(λ): no point of a fine lattice does better.
    for table in random_tables(seed=35, count=40):
        if table.num_paths == 1:
            continue
        inp = BoundInput.of(table)
        group = _Group([inp], np.array([0]))
        lam = fine_lattice(group.num_terms)
        on_lattice = group.at(lam[:, None, :]).max() + inp.after_fuse_s
        assert table_bound(table) >= on_lattice - 1e-12 * abs(on_lattice)


def test_space_value_is_the_least_table_bound():
    tables = list(random_tables(seed=36, count=60))
    bound = SpaceBound([BoundInput.of(t) for t in tables])
    each = [table_bound(t) for t in tables]
    value, where = bound.value(np.inf, {})
    assert value == pytest.approx(min(each), rel=1e-9)
    assert each[where] == pytest.approx(value, rel=1e-9)
    # A ceiling below every bound is returned as is; a proven optimum replaces its bound.
    assert bound.value(min(each) / 2, {}) == (min(each) / 2, None)
    assert bound.value(np.inf, {where: value * 1.5})[0] >= value


def test_below_yields_the_tables_under_the_ceiling_by_increasing_bound():
    tables = list(random_tables(seed=37, count=40))
    bound = SpaceBound([BoundInput.of(t) for t in tables])
    each = np.array([table_bound(t) for t in tables])
    ceiling = float(np.median(each))
    got = list(bound.below(lambda: ceiling))
    assert sorted(got) == sorted(np.flatnonzero(each < ceiling * (1 - 1e-9)).tolist())


def test_reuse_floors_keep_the_bound_valid_and_only_lower_it():
    # Without reuse, the least total any cut choice sends is a valid link floor; a smaller
    # per-path send can only lower the bound.
    for table in random_tables(seed=38, count=60, max_paths=4):
        plain = BoundInput.of(table)
        total = float(table.link_s.min(axis=1).sum())
        floored = BoundInput(
            table.device_s, table.link_s, table.link_s, table.edge_s,
            table.edge_concurrency, plain.after_fuse_s, link_total_floor_s=total,
        )  # fmt: skip
        assert input_bound(plain) <= input_bound(floored) <= optimum(table) * (1 + 1e-12)
        halved = BoundInput(
            table.device_s, table.link_s, table.link_s / 2, table.edge_s,
            table.edge_concurrency, plain.after_fuse_s,
        )  # fmt: skip
        assert input_bound(halved) <= input_bound(plain) * (1 + 1e-9)


def test_bad_input_is_an_internal_error():
    table = random_table(np.random.default_rng(39), 2, 3, 1)
    with pytest.raises(InternalError):
        input_bound(
            BoundInput(table.device_s, table.link_s, table.link_s[:, :2], table.edge_s, 1, 0.0)
        )
    with pytest.raises(InternalError):
        input_bound(BoundInput(table.device_s, table.link_s, table.link_s, table.edge_s, -1, 0.0))


# Seeds 3 and 7 enumerate 6 paths with 3 cuts each (half a million schedules, ~30 s each):
# the opt-in slow run.
REUSE_SEEDS = [pytest.param(s, marks=pytest.mark.slow) if s in (3, 7) else s for s in range(12)]


@pytest.mark.parametrize("seed", REUSE_SEEDS)
def test_bound_is_below_plain_enumeration_under_reuse(seed):
    """Reuse tables: link seconds depend on the paths before; the bound takes each path's
    fewest bytes, so it stays below every schedule while the nothing-held sends would not."""
    rng = np.random.default_rng(seed)
    grid = [(1, 2), (2, 2), (1, 3), (2, 3)][seed % 4]
    table = random_reuse_table(rng, grid, int(rng.integers(2, 4)), seed % 3)
    assert table.reuse is not None
    best = enumerate_all(table)
    assert table_bound(table) <= best + 1e-9
    assert np.all(table.reuse.min_s() <= table.link_s + 1e-12)
