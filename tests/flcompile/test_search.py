"""The plan search: the space it covers, its choice against NFL, and its refusals."""

from __future__ import annotations

from math import inf

import pytest

from flcompile import models, search
from flcompile.compile import analyse
from flcompile.costs import ComputeModel, LinkModel
from flcompile.errors import UsageError
from flcompile.load import LoadedModel
from flcompile.passes.fusable import Candidate
from flcompile.plans import SingleCutPlan
from flcompile.search import SearchOptions, grids_for, shortlist, solve
from flcompile.space_bound import table_bound


@pytest.fixture(scope="module")
def analysis():
    model = models.build("squeezenet", width=0.25, size=64)
    from flcompile.load import infer_shapes

    return analyse(LoadedModel(infer_shapes(model, "t"), "zoo:t", "0", "t"))


def run(analysis, rate: float = 1.8, **options):
    return analysis.search(ComputeModel(), LinkModel(rate_MBps=rate), SearchOptions(**options))


def test_grids_cover_every_fit_up_to_the_maximum() -> None:
    f = Candidate("f", (1, 8, 3, 10), ("n",))
    assert grids_for(f, SearchOptions(max_grid=(8, 8))) == [
        (r, c) for r in range(1, 4) for c in range(1, 9)
    ]
    assert grids_for(f, SearchOptions(grid=(2, 2))) == [(2, 2)]
    assert grids_for(f, SearchOptions(grid=(4, 2))) == []


@pytest.mark.parametrize("rate", [0.5, 1.8, 20.0])
def test_default_plan_beats_or_equals_nfl_and_bound_is_below(analysis, rate: float) -> None:
    result = run(analysis, rate)
    assert result.predicted_s <= result.baselines.nfl.total_s + 1e-12
    assert result.lower_bound_s <= result.predicted_s + 1e-12
    assert result.lower_bound_space_s <= result.predicted_s + 1e-12
    assert result.stats.plans_evaluated > 0
    assert result.stats.grids_tried > len(analysis.candidates)
    if result.plan is result.fused:
        assert result.best_by_solver["opt"] <= result.best_by_solver["mw"] + 1e-12


def test_default_is_at_or_below_every_single_solver(analysis) -> None:
    best = run(analysis).predicted_s
    assert best <= run(analysis, solver="mw").predicted_s + 1e-12
    assert best <= run(analysis, solver="opt", grid=(2, 2)).predicted_s + 1e-12
    assert best <= run(analysis, solver="nfl").predicted_s + 1e-12


@pytest.mark.parametrize("fuse_at", [None, "fire9/concat"])
def test_forced_grid_keeps_fused_layers_and_says_when_slower(analysis, fuse_at) -> None:
    # With a very fast link sending the raw input is about best; a forced grid still tiles.
    result = run(analysis, rate=1e6, grid=(2, 2), fuse_at=fuse_at)
    assert result.plan is result.fused and result.fused.tiling.grid == (2, 2)
    slower = result.fused.predicted_s >= result.baselines.nfl.total_s
    assert slower == any("slower than NFL" in n for n in result.notes)


def test_shortlist_keeps_every_2x2_and_the_best_by_mw(analysis) -> None:
    result = run(analysis, solver="mw")
    assert result.fused is not None
    tables = []
    for i, (score, grid) in enumerate([(3.0, (2, 2)), (1.0, (1, 3)), (2.0, (3, 1))]):
        plan = result.fused.__class__(
            result.fused.candidate,
            result.fused.tiling.__class__(result.fused.tiling.block, grid, (), ()),
            result.fused.costs,
            result.fused.table,
            result.fused.schedule,
            "mw",
            score,
        )
        tables.append((score, i, plan))
    chosen = shortlist(tables)
    assert [p.tiling.grid for p in chosen] == [(2, 2), (1, 3), (3, 1)]


def test_refusals(analysis) -> None:
    with pytest.raises(UsageError, match="not a tensor the model can be fused at"):
        run(analysis, fuse_at="nope")
    with pytest.raises(UsageError, match="larger than"):
        run(analysis, grid=(99, 99))
    f = analysis.candidates[0].tensor
    with pytest.raises(UsageError, match="larger than F"):
        run(analysis, grid=(999, 1), fuse_at=f)


def test_lower_bound_covers_every_f_whatever_is_forced(analysis) -> None:
    free = run(analysis).lower_bound_s
    assert run(analysis, fuse_at=analysis.candidates[0].tensor).lower_bound_s == free
    assert run(analysis, solver="nfl").lower_bound_s == free
    assert run(analysis, grid=(2, 2)).lower_bound_s == free


def test_nfl_solver_plans_without_fused_layers(analysis) -> None:
    result = run(analysis, solver="nfl")
    assert isinstance(result.plan, SingleCutPlan) and result.fused is None
    assert result.plan.reason == "--solver nfl"
    assert result.predicted_s == result.baselines.nfl.total_s


def _same_plan(a, b) -> None:
    assert a.predicted_s == b.predicted_s and a.lower_bound_s == b.lower_bound_s
    assert a.lower_bound_space_s == b.lower_bound_space_s
    assert (a.plan is a.fused) == (b.plan is b.fused) and a.notes == b.notes
    assert (a.fused is None) == (b.fused is None)
    if a.fused is not None:
        assert a.fused.candidate.tensor == b.fused.candidate.tensor
        assert a.fused.tiling.grid == b.fused.tiling.grid
        assert a.fused.schedule == b.fused.schedule and a.fused.solver == b.fused.solver
    stats = ("candidates_F", "grids_tried", "plans_evaluated")
    assert [getattr(a.stats, s) for s in stats] == [getattr(b.stats, s) for s in stats]


def test_one_space_solved_at_each_rate_equals_a_fresh_search(analysis) -> None:
    space = analysis.space(ComputeModel(), SearchOptions())
    for rate in (20.0, 0.5):  # the space keeps nothing of an earlier link
        _same_plan(solve(space, LinkModel(rate), "best"), run(analysis, rate))


def test_runs_record_every_solver_call(analysis) -> None:
    space = analysis.space(ComputeModel(), SearchOptions(max_grid=(3, 3)))
    result = solve(space, LinkModel(1.8), "best")
    by_solver = {s: [r for r in result.runs if r.solver == s] for s in ("mw", "opt")}
    assert [r.plan.tiling.grid for r in by_solver["mw"]] == [c.grid for c in space.choices]
    assert 0 < len(by_solver["opt"]) < len(space.choices)
    assert len(result.runs) == result.stats.plans_evaluated
    best = min(result.runs, key=lambda r: r.predicted_s)
    assert best.predicted_s == result.fused.predicted_s
    assert all(r.seconds >= 0 for r in result.runs)


def test_within_solves_the_smaller_grids_only(analysis) -> None:
    space = analysis.space(ComputeModel(), SearchOptions(max_grid=(3, 3)))
    small = space.within((2, 1))
    assert small.choices and all(c.grid[0] <= 2 and c.grid[1] == 1 for c in small.choices)
    assert len(small.choices) < len(space.choices)
    _same_plan(solve(small, LinkModel(1.8), "mw"), run(analysis, solver="mw", max_grid=(2, 1)))


def test_nfl_strategy_and_unknown_strategies(analysis) -> None:
    space = analysis.space(ComputeModel(), SearchOptions(max_grid=(2, 2)))
    result = solve(space, LinkModel(1.8), "nfl")
    assert result.fused is None and not result.runs and result.stats.candidates_F == 0
    assert result.lower_bound_s == run(analysis, solver="nfl").lower_bound_s
    with pytest.raises(UsageError, match="--solver 'fast' is unknown"):
        solve(space, LinkModel(1.8), "fast")


def test_space_bound_is_the_optimum_where_bf_solved_every_table(analysis) -> None:
    # BF proves each table's optimum, so the least bound over the space is the best plan.
    result = run(analysis, solver="bf", max_grid=(2, 1))
    assert not any("refused" in n for n in result.notes)
    assert result.lower_bound_space_s == pytest.approx(result.predicted_s, rel=1e-12)
    # MW proves nothing: its bound comes from the tables alone and stays below.
    mw = run(analysis, solver="mw", max_grid=(2, 1))
    assert mw.lower_bound_space_s <= result.lower_bound_space_s * (1 + 1e-12)


def test_best_gives_opt_every_table_whose_bound_is_below_its_plan(analysis) -> None:
    space = analysis.space(ComputeModel(), SearchOptions(max_grid=(3, 3)))
    link = LinkModel(1.8)
    result = solve(space, link, "best")
    with_opt = {
        (r.plan.candidate.tensor, r.plan.tiling.grid) for r in result.runs if r.solver == "opt"
    }
    for choice in space.choices:
        if table_bound(space.table(choice, link)) < result.predicted_s * (1 - 1e-9):
            assert (choice.candidate.tensor, choice.grid) in with_opt
    assert result.lower_bound_space_s <= result.predicted_s


@pytest.mark.parametrize("rate", [0.5, 1.8])
def test_reuse_search_keeps_the_independent_plan_where_its_bound_leaves_room(
    analysis, monkeypatch, rate: float
) -> None:
    link, options = LinkModel(rate), SearchOptions(reuse=True, max_grid=(3, 3))
    space = analysis.space(ComputeModel(), options)
    monkeypatch.setattr(search, "INDEPENDENT_SEARCH_ABOVE", inf)  # never
    alone = solve(space, link, "best")
    assert not alone.independent_runs

    monkeypatch.setattr(search, "INDEPENDENT_SEARCH_ABOVE", 0.0)  # always
    result = solve(space, link, "best")
    assert all(r.plan.table.reuse is None for r in result.independent_runs)
    assert all(r.plan.table.reuse is not None for r in result.runs)  # this space's tables
    best_independent = min(result.independent_runs, key=lambda r: r.predicted_s)
    no_reuse = run(analysis, rate, reuse=False, max_grid=(3, 3))
    # It stops at the reuse search's plan, and finds the --no-reuse plan wherever that is faster.
    if no_reuse.fused.predicted_s < alone.predicted_s:
        assert best_independent.predicted_s == pytest.approx(no_reuse.fused.predicted_s, rel=1e-12)
    assert best_independent.predicted_s >= no_reuse.fused.predicted_s * (1 - 1e-12)
    # Its schedule, on the same tiling, scored under reuse: never slower.
    rescored = [
        r
        for r in result.runs
        if r.plan.tiling is best_independent.plan.tiling
        and r.plan.schedule == best_independent.plan.schedule
    ]
    assert rescored and rescored[0].predicted_s <= best_independent.predicted_s + 1e-12
    assert result.fused.predicted_s <= no_reuse.fused.predicted_s + 1e-12
    assert result.fused.table.reuse is not None
    assert result.lower_bound_space_s <= result.predicted_s + 1e-12
    runs = len(result.runs) + len(result.independent_runs)
    assert result.stats.plans_evaluated == runs
