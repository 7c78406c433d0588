"""Reuse geometry: the ≤2-rectangle cover of a region's new pixels, against pixel masks and an
exhaustive search over every pair of rectangles."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from flcompile.costs.rects import intersect, new_cover, rect_area


def _mask(shape: tuple[int, int], rects) -> np.ndarray:
    out = np.zeros(shape, bool)
    for h0, h1, w0, w1 in rects:
        out[max(h0, 0) : max(h1, 0), max(w0, 0) : max(w1, 0)] = True
    return out


@st.composite
def rect_in(draw, size: int = 8):
    h0 = draw(st.integers(0, size - 1))
    w0 = draw(st.integers(0, size - 1))
    return (h0, draw(st.integers(h0 + 1, size)), w0, draw(st.integers(w0 + 1, size)))


def _best_pair_cost(region, new: np.ndarray) -> int:
    """The least pixels of one or two rectangles inside `region` covering `new`, by brute force."""
    h0, h1, w0, w1 = region
    rects = [
        (a, b, c, d)
        for a, b in itertools.combinations(range(h0, h1 + 1), 2)
        for c, d in itertools.combinations(range(w0, w1 + 1), 2)
    ]
    masks = [_mask(new.shape, [r]) for r in rects]
    best = min((rect_area(r) for r, m in zip(rects, masks, strict=True) if not (new & ~m).any()))
    for (ra, ma), (rb, mb) in itertools.combinations(zip(rects, masks, strict=True), 2):
        cost = rect_area(ra) + rect_area(rb)
        if cost < best and not (new & ~(ma | mb)).any():
            best = cost
    return best


@given(rect_in(), st.lists(rect_in(), max_size=4))
def test_cover_is_inside_and_covers_every_new_pixel(region, held):
    pieces = new_cover(region, held)
    shape = (8, 8)
    new = _mask(shape, [region]) & ~_mask(shape, held)
    assert len(pieces) <= 2
    assert all(intersect(p, region) == p for p in pieces)
    assert not (new & ~_mask(shape, pieces)).any()
    if not new.any():
        assert pieces == ()


@given(rect_in(6), st.lists(rect_in(6), max_size=3))
def test_cover_has_the_fewest_pixels(region, held):
    new = _mask((6, 6), [region]) & ~_mask((6, 6), held)
    if not new.any():
        return
    cost = sum(rect_area(p) for p in new_cover(region, held))
    assert cost == _best_pair_cost(region, new)


@given(rect_in(), rect_in())
def test_a_rectangle_or_an_l_shape_is_sent_exactly(region, other):
    """Holding one rectangle leaves a region minus a rectangle: exact unless it is a hole or a
    band across the middle (then more than two rectangles would be needed)."""
    pieces = new_cover(region, [other])
    new = _mask((8, 8), [region]) & ~_mask((8, 8), [other])
    sent = sum(rect_area(p) for p in pieces)
    cut = intersect(region, other)
    touches = cut is not None and sum(
        (cut[0] == region[0], cut[1] == region[1], cut[2] == region[2], cut[3] == region[3])
    )
    if cut is None or touches >= 2:  # a corner, a side band or all of it held
        assert sent == int(new.sum())
        if len(pieces) == 2:
            assert intersect(*pieces) is None


def test_l_shape_is_two_disjoint_rectangles():
    # Region 0..10 × 0..10, its top-left 4×4 corner held: an L of 84 pixels, two pieces.
    pieces = new_cover((0, 10, 0, 10), [(0, 4, 0, 4)])
    assert len(pieces) == 2
    assert sum(rect_area(p) for p in pieces) == 100 - 16


def test_nothing_held_is_the_whole_region_and_all_held_is_nothing():
    assert new_cover((2, 5, 3, 9), []) == ((2, 5, 3, 9),)
    assert new_cover((2, 5, 3, 9), [(0, 9, 0, 9)]) == ()
    assert new_cover((2, 5, 3, 9), [(6, 9, 0, 9)]) == ((2, 5, 3, 9),)


@given(rect_in(), st.lists(rect_in(), max_size=4), st.integers(-5, 20), st.integers(-5, 20))
def test_the_cover_moves_with_the_region(region, held, dh, dw):
    """Covers are solved once per shape and held pattern, relative to the region's corner:
    a moved region and held set get the same pieces, moved."""

    def moved(r):
        return (r[0] + dh, r[1] + dh, r[2] + dw, r[3] + dw)

    here = new_cover(region, held)
    there = new_cover(moved(region), [moved(r) for r in held])
    assert there == tuple(moved(p) for p in here)
    assert all(isinstance(v, int) for p in there for v in p)
