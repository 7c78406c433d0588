"""The exclusive-pixel floor of edge-side reuse and the coarse cells of the drain bound, against
painting every region pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flcompile.costs.reuse import reuse_geometry
from flcompile.solvers.random_tables import random_reuse_table


def coverage(regions: np.ndarray) -> np.ndarray:
    """How many of the (h0, h1, w0, w1) regions hold each pixel."""
    canvas = np.zeros((regions[:, 1].max(), regions[:, 3].max()), int)
    for h0, h1, w0, w1 in regions:
        canvas[h0:h1, w0:w1] += 1
    return canvas


def painted(geometry, weight) -> np.ndarray:
    """(P, K) by painting every region pixel by pixel: Σ over each region's pixels of
    weight(how many regions hold the pixel), times bytes per pixel, over each cut's tensors."""
    per_tensor = np.zeros((len(geometry.tensors), geometry.num_paths))
    for t in range(len(geometry.tensors)):
        regions = geometry.regions[t]
        canvas = coverage(regions)
        for p, (h0, h1, w0, w1) in enumerate(regions):
            total = float(weight(canvas[h0:h1, w0:w1]).sum())
            per_tensor[t, p] = total * geometry.bytes_per_pixel[t]
    return (geometry.crossing.astype(float) @ per_tensor).T


def painted_exclusive_bytes(geometry) -> np.ndarray:
    """The pixels of each region no other region holds."""
    return painted(geometry, lambda count: count == 1)


@pytest.mark.parametrize("seed", range(20))
def test_exclusive_bytes_count_the_pixels_only_one_path_needs(seed):
    rng = np.random.default_rng(seed)
    grid = [(1, 2), (2, 2), (1, 3), (2, 3), (3, 3)][seed % 5]
    geometry = random_reuse_table(rng, grid, int(rng.integers(2, 4)), 1).reuse.geometry
    floor = geometry.exclusive_bytes(grid)
    np.testing.assert_allclose(floor, painted_exclusive_bytes(geometry))
    assert np.all(floor <= geometry.min_bytes() + 1e-9)  # a floor under the fewest sendable


def test_regions_that_are_no_grid_fall_back_to_the_fewest_sendable_bytes():
    geometry = random_reuse_table(np.random.default_rng(3), (2, 2), 2, 1).reuse.geometry
    np.testing.assert_array_equal(geometry.exclusive_bytes((1, 4)), geometry.min_bytes())


@pytest.mark.parametrize("seed", range(20))
def test_shares_divide_each_pixel_among_the_regions_that_hold_it(seed):
    rng = np.random.default_rng(seed)
    grid = [(1, 2), (2, 2), (1, 3), (2, 3), (3, 3)][seed % 5]
    geometry = random_reuse_table(rng, grid, int(rng.integers(2, 4)), 1).reuse.geometry
    shares = geometry.share_bytes(grid)
    np.testing.assert_allclose(shares, painted(geometry, lambda count: 1.0 / count))
    assert np.all(shares >= geometry.exclusive_bytes(grid) - 1e-9)
    # Every path cut at cut 0 (which sends tensor 0 alone): the shares add up to the union
    # of the regions, what the link carries with every pixel sent once.
    union = int((coverage(geometry.regions[0]) > 0).sum())
    assert geometry.crossing[0].tolist() == [True] + [False] * (len(geometry.tensors) - 1)
    assert shares[:, 0].sum() == pytest.approx(union * geometry.bytes_per_pixel[0])


@st.composite
def region_sets(draw: st.DrawFn) -> np.ndarray:
    """1 to 6 arbitrary (overlapping, not grid-aligned) regions of a 12×12 tensor."""
    rects = []
    for _ in range(draw(st.integers(1, 6))):
        h0, w0 = draw(st.integers(0, 11)), draw(st.integers(0, 11))
        rects.append((h0, draw(st.integers(h0 + 1, 12)), w0, draw(st.integers(w0 + 1, 12))))
    return np.array(rects)


@given(region_sets(), st.floats(0.5, 4.0))
def test_coarse_cells_hold_each_region_and_their_union_exactly(regions, bytes_per_pixel):
    geometry = reuse_geometry(
        ["t"], regions[None], np.array([bytes_per_pixel]), np.ones((1, 1), bool)
    )
    cover, cell_bytes = geometry.coarse_cells(0)
    canvas = coverage(regions)
    union = (canvas > 0).sum() * bytes_per_pixel
    assert cover.any(axis=0) @ cell_bytes == pytest.approx(union)
    assert geometry.tensor_share(0).sum() == pytest.approx(union)  # shares split the union
    shares = painted(geometry, lambda count: 1.0 / np.maximum(count, 1))[:, 0]
    assert geometry.tensor_share(0) == pytest.approx(shares)
    assert cover @ cell_bytes == pytest.approx(geometry.region_bytes()[0])
    assert cover.sum(axis=0) @ cell_bytes == pytest.approx(canvas.sum() * bytes_per_pixel)
