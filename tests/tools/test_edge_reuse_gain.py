"""tools/edge_reuse_gain.py on a small AlexNet (a chain): with intermediate reuse the edge
computes every pixel of every block node once, never more than a path alone, and a 1x1
grid is full offload."""

from __future__ import annotations

import edge_reuse_gain as gain
import numpy as np
import pytest
from _common import load_analysis

from flcompile.costs import LinkModel, compute_model
from flcompile.costs.untiled import baselines
from flcompile.search import SearchOptions
from flcompile.simulate import makespan

F = "conv2/relu"  # its block is a chain: conv1, conv1/relu, pool1, conv2, conv2/relu
LINK = LinkModel(rate_MBps=1.8)


@pytest.fixture(scope="module")
def analysis():
    return load_analysis("alexnet", 0.25, 64)


def space_at(analysis, grid, edge_concurrency=None, max_grid=None):
    options = SearchOptions(
        fuse_at=F,
        grid=None if max_grid else grid,
        max_grid=max_grid or (8, 8),
        reuse=True,
        tiles="uniform",
    )
    return analysis.space(compute_model(False, edge_concurrency), options)


def test_each_pixel_is_computed_once_in_every_order(analysis) -> None:
    space = space_at(analysis, (3, 3))
    (choice,) = space.choices
    plans = gain.raw_cut_plans(space, (8, 8), "exact", "test")
    assert {p.order_name for p in plans} == {"row-major", "column-major", "snake", "column snake"}
    regions = gain.node_regions(choice.tiling)
    area = gain.region_pixels(regions)
    untiled = choice.fused.costs.untiled_flops
    assert choice.costs.flops.sum() > 1.2 * untiled  # the tiles do recompute halos
    for plan in plans:
        new = gain.new_pixels(regions, plan.order)
        assert np.all(new <= area) and np.all(new >= 0)
        assert np.array_equal(new[plan.order[0]], area[plan.order[0]])  # the first holds nothing
        # A chain whose every pixel F needs: the paths together compute the block once.
        assert (choice.costs.flops * new / area).sum() == pytest.approx(untiled, rel=1e-12)
        assert np.all(plan.edge_reuse_s <= plan.edge_s * (1 + 1e-12))
        assert plan.edge_reuse_s.sum() < plan.edge_s.sum()
        # Send reuse of raw tiles: the input crosses once.
        assert plan.sent_bytes.sum() == pytest.approx(choice.fused.whole.send_bytes[0, 0])
        for intermediate, edge in ((True, plan.edge_reuse_s), (False, plan.edge_s)):
            table = plan.table(space, LINK, intermediate)
            np.testing.assert_array_equal(table.edge_s[:, 0], edge)
            assert table.edge_s.shape == (9, 1) and table.waits and table.reuse is None
        rects = gain.new_pixels(regions, plan.order, "rects")  # two rectangles: no fewer cells
        assert np.all(new <= rects) and np.all(rects <= area)


def test_a_1x1_grid_is_full_offload(analysis) -> None:
    space = space_at(analysis, (1, 1))
    (plan,) = gain.raw_cut_plans(space, (8, 8), "exact", "test")
    np.testing.assert_array_equal(plan.edge_reuse_s, plan.edge_s)
    latency = makespan(plan.table(space, LINK, True), plan.order, [0])
    assert latency == pytest.approx(makespan(space.table(plan.choice, LINK), [0], [0]), rel=1e-12)
    offload = baselines(space.model, space.compute, LINK).full_offload.total_s
    assert latency == pytest.approx(offload, rel=1e-9)


@pytest.mark.parametrize("edge_concurrency", [1, 0])
def test_intermediate_reuse_never_loses(analysis, edge_concurrency) -> None:
    space = space_at(analysis, None, edge_concurrency, max_grid=(3, 3))
    plans = gain.raw_cut_plans(space, (3, 3), "exact", "test")
    assert len({p.choice.grid for p in plans}) == 9
    sent, inter, serial = gain.best_raw_plans(space, plans, LINK, edge_concurrency != 1)
    assert inter.latency_s <= sent.latency_s
    assert inter.latency_s <= serial.latency_s  # a serial edge is never faster
    if edge_concurrency == 1:
        assert serial == inter
