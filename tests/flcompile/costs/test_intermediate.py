"""Intermediate reuse's geometry and edge seconds: what each path computes of each node.

The closed form of the scan orders (`scan_pieces`) is checked against the general cover
(`computed_pieces`, any order), and the general cover against its definition, on zoo blocks
with equal and random unequal tiles.
"""

from __future__ import annotations

import random

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flcompile import models
from flcompile.costs import ComputeModel
from flcompile.costs.intermediate import (
    SCAN_ORDERS,
    computed_pieces,
    input_union_pixels,
    intermediate_edge_s,
    node_regions,
    scan_edge_floor_s,
    scan_order,
    scan_orders,
    scan_pieces,
)
from flcompile.costs.tiles import block_costs, tile_costs, tiling_geometry
from flcompile.passes.fusable import find_candidates, find_prefix
from flcompile.passes.normalize import normalize
from flcompile.passes.receptive_field import make_block, make_tiling, tiling_at

MODELS = ("alexnet", "squeezenet", "resnet18", "yolov2", "mobilenet_v2")


def _blocks(name: str):
    model = onnx.shape_inference.infer_shapes(models.build(name, width=0.25, size=64))
    graph = gs.import_onnx(model)
    normalize(graph)
    prefix = find_prefix(graph, name)
    return graph, [make_block(graph, prefix, c) for c in find_candidates(graph, prefix)]


BLOCKS = {name: _blocks(name) for name in MODELS}


def _tiling(draw, name: str):
    graph, blocks = BLOCKS[name]
    block = draw(st.sampled_from(blocks))
    h, w = block.fused_shape[2], block.fused_shape[3]
    grid = (draw(st.integers(1, min(h, 5))), draw(st.integers(1, min(w, 5))))
    if draw(st.booleans()):
        return graph, block, make_tiling(block, grid)
    rnd = random.Random(draw(st.integers(0, 1000)))
    bounds = [
        (0, *sorted(rnd.sample(range(1, size), parts - 1)), size)
        for size, parts in ((h, grid[0]), (w, grid[1]))
    ]
    return graph, block, tiling_at(block, *bounds)


@st.composite
def tilings(draw):
    return _tiling(draw, draw(st.sampled_from(MODELS)))


def _rects(pieces, tiling):
    nodes = len(tiling.block.nodes)
    return [[pieces.rects(p, n) for n in range(nodes)] for p in range(tiling.num_paths)]


@given(tilings())
def test_the_scans_closed_form_equals_the_general_cover(drawn) -> None:
    _, _, tiling = drawn
    for name, order in scan_orders(tiling.grid).items():
        closed, general = scan_pieces(tiling, name), computed_pieces(tiling, order)
        assert closed.order == general.order == order
        assert _rects(closed, tiling) == _rects(general, tiling)
        assert closed.sends == general.sends
        np.testing.assert_array_equal(closed.region_pixels, general.region_pixels)


@given(tilings(), st.integers(0, 10_000))
def test_each_path_computes_exactly_what_no_earlier_path_did(drawn, seed: int) -> None:
    """Any order: a path's rectangles lie in its region and, with the earlier paths'
    regions, cover the region; they are at most two, and none is empty."""
    _, _, tiling = drawn
    order = random.Random(seed).sample(range(tiling.num_paths), tiling.num_paths)
    pieces = computed_pieces(tiling, order)
    for n, regions in enumerate(node_regions(tiling)):
        plane = np.zeros((max(r[1] for r in regions), max(r[3] for r in regions)), bool)
        for p in order:
            h0, h1, w0, w1 = regions[p]
            rects = pieces.rects(p, n)
            assert len(rects) <= 2
            done = plane.copy()
            for a, b, c, d in rects:
                assert h0 <= a < b <= h1 and w0 <= c < d <= w1
                done[a:b, c:d] = True
            assert done[h0:h1, w0:w1].all(), (n, p)
            plane[h0:h1, w0:w1] = True
    assert set(pieces.order) == set(range(tiling.num_paths))


@given(tilings())
def test_the_input_is_sent_once_in_a_scan(drawn) -> None:
    """A scan sends every input pixel the tiles read exactly once, as edge-side reuse's
    geometry counts it."""
    graph, block, tiling = drawn
    geometry = tiling_geometry(tiling, block_costs(graph, block))
    for name, order in scan_orders(tiling.grid).items():
        pieces = scan_pieces(tiling, name)
        sent = geometry.sends(order, [0] * tiling.num_paths)
        assert [entry[0][1] for entry in sent] == [pieces.sends[p] for p in order]
        seen: dict[tuple[int, int], int] = {}
        for rects in pieces.sends:
            for a, b, c, d in rects:
                for cell in np.ndindex(b - a, d - c):
                    key = (a + cell[0], c + cell[1])
                    seen[key] = seen.get(key, 0) + 1
        assert max(seen.values()) == 1


@pytest.mark.parametrize("name", ["alexnet", "squeezenet"])
def test_edge_seconds_shrink_to_the_new_work(name: str) -> None:
    graph, blocks = BLOCKS[name]
    block = [b for b in blocks if min(b.fused_shape[2:]) >= 6][-1]  # the deepest 3x3 fits
    costs = block_costs(graph, block)
    compute = ComputeModel(overhead_edge_s=1e-4)
    one = make_tiling(block, (1, 1))
    whole = intermediate_edge_s(tile_costs(one, costs), compute, scan_pieces(one, "row-major"))
    full = compute.edge_nodes_s(tile_costs(one, costs).work).sum()
    assert whole[0] == pytest.approx(full)  # one path computes everything, once
    tiling = make_tiling(block, (3, 3))
    tiles = tile_costs(tiling, costs)
    independent = compute.edge_nodes_s(tiles.work).sum(axis=1)
    for name_ in SCAN_ORDERS:
        pieces = scan_pieces(tiling, name_)
        seconds = intermediate_edge_s(tiles, compute, pieces)
        assert (seconds <= independent + 1e-15).all()
        assert seconds[pieces.order[0]] == pytest.approx(independent[pieces.order[0]])
        assert seconds.sum() < independent.sum()
        # Each pixel of each node once: about the untiled FLOPs (some overlap at the edges).
        assert pieces.flops(tiles).sum() == pytest.approx(tiles.flops.sum() / tiles.redundancy)


def test_scan_orders_are_distinct_permutations() -> None:
    for grid in [(1, 1), (1, 4), (3, 1), (2, 2), (3, 5)]:
        orders = scan_orders(grid)
        assert len(set(orders.values())) == len(orders)
        for order in orders.values():
            assert sorted(order) == list(range(grid[0] * grid[1]))
    assert scan_order((2, 3), "snake") == (0, 1, 2, 5, 4, 3)
    assert scan_order((2, 3), "column snake") == (0, 3, 4, 1, 2, 5)
    assert list(scan_orders((1, 4))) == ["row-major"]  # one line: every scan is the same
    assert list(scan_orders((2, 2))) == ["row-major", "snake", "column-major", "column snake"]


@settings(max_examples=10)
@given(st.sampled_from(MODELS))
def test_node_regions_are_the_tiles_outputs(name: str) -> None:
    _, blocks = BLOCKS[name]
    tiling = make_tiling(blocks[0], (2, 2))
    regions = node_regions(tiling)
    row, col = tiling.axes(3)
    assert regions[-1][3] == (
        row.out[-1].start,
        row.out[-1].stop,
        col.out[-1].start,
        col.out[-1].stop,
    )


@given(tilings(), st.sampled_from([0.0, 1e-4]))
def test_the_scan_floors_hold(drawn, overhead: float) -> None:
    """Every scan sends the input pixels its tiles read once, and its edge parts take at
    least `scan_edge_floor_s` together (equal without per-node overheads)."""
    graph, block, tiling = drawn
    costs = block_costs(graph, block)
    tiles = tile_costs(tiling, costs)
    compute = ComputeModel(overhead_edge_s=overhead)
    floor = scan_edge_floor_s(tiling, tiles, compute)
    for name in scan_orders(tiling.grid):
        pieces = scan_pieces(tiling, name)
        assert pieces.sent_pixels().sum() == input_union_pixels(tiling)
        seconds = intermediate_edge_s(tiles, compute, pieces).sum()
        assert floor <= seconds * (1 + 1e-9)
        if overhead == 0.0:
            assert floor == pytest.approx(seconds, rel=1e-9)
