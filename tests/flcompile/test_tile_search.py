"""Unequal tiles (`--tiles free`): the boundary local search, the search's use of it, and
free-tile plans emitted, verified in onnxruntime and re-simulated from plan.json."""

from __future__ import annotations

import itertools
import json

import onnx
import pytest

from flcompile import models
from flcompile.cli import main
from flcompile.compile import CompileOptions, analyse, compile_model
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.tiles import tile_costs
from flcompile.errors import UsageError
from flcompile.load import LoadedModel, infer_shapes
from flcompile.passes.receptive_field import make_tiling, tiling_at, uniform_bounds
from flcompile.plan_json import resimulate
from flcompile.search import DEFAULT_TILES, SearchOptions, solve
from flcompile.simulate import makespan
from flcompile.tile_search import _moves, free_shortlist, search_boundaries

RATE = 1.8  # small AlexNet's best plan at 1.8 MB/s has unequal tiles (pool1, 2x2)


@pytest.fixture(scope="module")
def alexnet():
    model = models.build("alexnet", width=0.25, size=64)
    return analyse(LoadedModel(infer_shapes(model, "t"), "zoo:t", "0", "t"))


@pytest.fixture(scope="module")
def pool1(alexnet):
    """AlexNet's pool1 F (7x7) and its block's memo."""
    space = alexnet.space(ComputeModel(), SearchOptions(fuse_at="pool1", max_grid=(1, 1)))
    return space.fused[[f.candidate.tensor for f in space.fused].index("pool1")]


def test_moves_shift_one_boundary_and_keep_every_tile() -> None:
    bounds = ((0, 2, 4, 7), (0, 5, 9))
    moves = _moves(bounds, (2, 1))
    # Row boundaries 2 and 4 by ±2: only 4→6 leaves every tile non-empty (2→0 empties the
    # first row, 2→4 and 4→2 collide); column boundary 5 by ±1 both ways.
    assert sorted(moves) == [
        ((0, 2, 4, 7), (0, 4, 9)),
        ((0, 2, 4, 7), (0, 6, 9)),
        ((0, 2, 6, 7), (0, 5, 9)),
    ]
    for rows, cols in moves:
        assert all(a < b for a, b in itertools.pairwise(rows))
        assert all(a < b for a, b in itertools.pairwise(cols))


def test_search_walks_to_the_minimum_of_a_score(pool1) -> None:
    # A score whose minimum is the tiling with rows (0, 1, 5, 7) and columns (0, 6, 7):
    # far from the uniform 3x2 start (0, 3, 5, 7) x (0, 4, 7), reached by single moves.
    target = ((0, 1, 5, 7), (0, 6, 7))

    def distance(tiling) -> float:
        got = [*tiling.bounds[0], *tiling.bounds[1]]
        return float(sum(abs(a - b) for a, b in zip(got, [*target[0], *target[1]], strict=True)))

    start = make_tiling(pool1.block, (3, 2), pool1.cache)
    found = search_boundaries(start, distance, pool1.cache)
    assert found.tiling.bounds == target and found.score == 0.0
    assert 1 < found.evaluated <= 120
    # The budget is respected, and the start is kept when nothing beats it.
    assert search_boundaries(start, distance, pool1.cache, max_evaluations=1).tiling is start
    flat = search_boundaries(start, lambda t: 1.0, pool1.cache)
    assert flat.tiling is start and flat.score == 1.0


def test_options_resolve_the_tiles() -> None:
    assert SearchOptions().free_tiles == (DEFAULT_TILES == "free")
    assert not SearchOptions(grid=(2, 2)).free_tiles  # --grid forces a uniform grid...
    assert SearchOptions(grid=(2, 2), tiles="free").free_tiles  # ...unless --tiles free
    assert not SearchOptions(tiles="uniform").free_tiles


def test_an_unknown_tiles_value_is_a_usage_error(alexnet) -> None:
    with pytest.raises(UsageError, match="--tiles 'wavy'"):
        alexnet.space(ComputeModel(), SearchOptions(tiles="wavy"))


@pytest.mark.parametrize("concurrency", [1, 0])
def test_free_tiles_beat_uniform_and_are_scored_exactly(alexnet, concurrency) -> None:
    compute, link = ComputeModel(edge_concurrency=concurrency), LinkModel(rate_MBps=RATE)
    options = SearchOptions(max_grid=(2, 2), tiles="uniform")
    uniform = solve(alexnet.space(compute, options), link, "best")
    space = alexnet.space(compute, SearchOptions(max_grid=(2, 2), tiles="free"))
    free = solve(space, link, "best")
    plan = free.fused
    assert free.predicted_s < uniform.predicted_s
    assert not plan.tiling.uniform and plan.solver == "opt"
    # The same uniform runs first, then the boundary searches' results.
    assert [r.predicted_s for r in free.runs[: len(uniform.runs)]] == [
        r.predicted_s for r in uniform.runs
    ]
    # Its costs are those of the receptive-field code on its bounds, from scratch.
    choice = next(
        c for c in space.choices if (c.candidate, c.grid) == (plan.candidate, plan.tiling.grid)
    )
    again = tiling_at(plan.tiling.block, *plan.tiling.bounds)
    costs = tile_costs(again, choice.fused.costs)
    assert (costs.send_bytes == plan.costs.send_bytes).all()
    assert (costs.flops == plan.costs.flops).all()
    schedule = plan.schedule
    assert makespan(plan.table, schedule.order, schedule.cuts) == plan.predicted_s


def test_mw_searches_with_mw_only(alexnet) -> None:
    link = LinkModel(rate_MBps=RATE)
    space = alexnet.space(ComputeModel(), SearchOptions(max_grid=(2, 2), tiles="free"))
    result = solve(space, link, "mw")
    assert {r.solver for r in result.runs} == {"mw"}
    assert any(not r.plan.tiling.uniform for r in result.runs)
    options = SearchOptions(max_grid=(2, 2), tiles="uniform")
    uniform = solve(alexnet.space(ComputeModel(), options), link, "mw")
    assert result.predicted_s <= uniform.predicted_s


def test_shortlist_leaves_out_single_tiles(alexnet) -> None:
    space = alexnet.space(ComputeModel(), SearchOptions(max_grid=(2, 2), tiles="free"))
    result = solve(space, LinkModel(rate_MBps=RATE), "mw")
    scored = [(r.predicted_s, i, r.plan) for i, r in enumerate(result.runs[: len(space.choices)])]
    picks = free_shortlist(scored, 3)
    assert len(picks) == 3 and all(space.choices[i].tiling.num_paths > 1 for i in picks)
    ranked = sorted(s for s, i, e in scored if e.tiling.num_paths > 1)
    assert [scored[i][0] for i in picks] == ranked[:3]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Small AlexNet compiled with free tiles and stage models."""
    folder = tmp_path_factory.mktemp("free")
    path = folder / "alexnet.onnx"
    onnx.save_model(models.build("alexnet", width=0.25, size=64), str(path))
    options = CompileOptions(
        link=LinkModel(rate_MBps=RATE),
        search=SearchOptions(max_grid=(2, 2), tiles="free"),
        runs=0,
        emit_stages=True,
    )
    compile_model(str(path), folder / "out", options)
    return folder / "out"


def test_a_free_tile_plan_is_verified_and_resimulated(compiled) -> None:
    plan = json.loads((compiled / "plan.json").read_text())
    assert plan["verify"]["passed"]  # edge(device(x)) and F equal the original's
    assert plan["fused"]["tensor"] in {c["name"] for c in plan["verify"]["compared"]}
    assert resimulate(plan) == pytest.approx(plan["predicted_s"], rel=1e-12)
    # Each tile's bounds: rows and columns of F, unequal, covering F exactly once.
    h, w = plan["fused"]["shape"][2:]
    rows = sorted({tuple(p["tile"]["h"]) for p in plan["paths"]})
    cols = sorted({tuple(p["tile"]["w"]) for p in plan["paths"]})
    assert sum(b - a for a, b in rows) == h and sum(b - a for a, b in cols) == w
    assert len(plan["paths"]) == len(rows) * len(cols) == 4
    row_bounds = (0, *(b for _, b in rows))
    col_bounds = (0, *(b for _, b in cols))
    assert (row_bounds, col_bounds) != (uniform_bounds(h, 2), uniform_bounds(w, 2))
    for p in plan["paths"]:
        (h0, h1), (w0, w1) = p["tile"]["h"], p["tile"]["w"]
        assert p["tile_shape"][2:] == [h1 - h0, w1 - w0]
    stages = json.loads((compiled / "stages" / "stages.json").read_text())
    assert len(stages["paths"]) == 4


def test_cli_tiles_option(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "alexnet.onnx"
    onnx.save_model(models.build("alexnet", width=0.25, size=64), str(path))
    monkeypatch.chdir(tmp_path)
    common = [str(path), "--rate", str(RATE), "--max-grid", "2x2", "--runs", "0"]
    assert main([*common, "--tiles", "free", "-o", "free"]) == 0
    assert "of unequal tiles" in capsys.readouterr().out
    # --grid forces a uniform grid unless --tiles free asks to move its boundaries.
    assert main([*common, "--grid", "2x2", "--fuse-at", "pool1", "-o", "fixed"]) == 0
    assert "of unequal tiles" not in capsys.readouterr().out
    args = [*common, "--grid", "2x2", "--fuse-at", "pool1", "--tiles", "free", "-o", "moved"]
    assert main(args) == 0
    assert "grid 2x2 of unequal tiles" in capsys.readouterr().out
    assert main([*common, "--tiles", "wavy", "-o", "bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tiles" in err[0]
    assert not (tmp_path / "bad").exists()
