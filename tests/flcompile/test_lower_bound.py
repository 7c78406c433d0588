"""Tests for the fluid lower bound: hand cases, exactness against an α lattice, validity vs BF."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from flcompile.errors import InternalError
from flcompile.lower_bound import _terms, fluid_bound, fluid_lower_bound, min_max
from flcompile.simulate import makespan
from flcompile.solvers.bf import solve_bf
from flcompile.solvers.random_tables import split_table


def _loads(device, link, edge, concurrency, alpha):
    terms = [alpha @ device, alpha @ link]
    if concurrency:
        terms.append(alpha @ edge / concurrency)
    return max(terms)


def _achieved(bound, device, link, edge, post, concurrency):
    alpha = np.zeros(len(device))
    alpha[list(bound.cuts)] = bound.alphas
    return _loads(device, link, edge, concurrency, alpha) + post


def test_two_cut_mix_hand_computed():
    # Cut 0: D 0, L 4, E 2.  Cut 1: D 4, L 1, E 0.
    # Mixing t of cut 1: device 4t, link 4 - 3t, edge 2 - 2t. Device = link at t = 4/7,
    # where the edge (6/7) is below 16/7.
    # Should give: 16/7 + post with cuts (0, 1) and alphas (3/7, 4/7), serial or unlimited.
    device, link, edge = np.array([0.0, 4.0]), np.array([4.0, 1.0]), np.array([2.0, 0.0])
    for concurrency in (0, 1):
        bound = fluid_bound(device, link, edge, 0.5, concurrency)
        assert bound.value == pytest.approx(16 / 7 + 0.5, rel=1e-14)
        assert bound.cuts == (0, 1)
        assert bound.alphas == pytest.approx((3 / 7, 4 / 7), rel=1e-14)


def test_three_cut_mix_needs_the_edge_term():
    # Each cut is cheap on two of the three resources:
    #   cut 0 (D 0, L 3, E 3), cut 1 (D 3, L 0, E 3), cut 2 (D 3, L 3, E 0).
    # Serial edge: a third of each loads every resource with 2; any two cuts leave one at 3.
    # Unlimited edge: half cut 0, half cut 1 gives device = link = 1.5.
    # Two servers: the edge term is E/2, and the same half/half mix gives 1.5 everywhere.
    device, link, edge = np.array([0.0, 3, 3]), np.array([3.0, 0, 3]), np.array([3.0, 3, 0])
    serial = fluid_bound(device, link, edge, 0.0, 1)
    assert serial.value == pytest.approx(2.0, rel=1e-14)
    assert serial.cuts == (0, 1, 2)
    assert serial.alphas == pytest.approx((1 / 3, 1 / 3, 1 / 3), rel=1e-12)
    for concurrency in (0, 2):
        bound = fluid_bound(device, link, edge, 0.0, concurrency)
        assert bound.value == pytest.approx(1.5, rel=1e-14)
        assert bound.cuts == (0, 1)
    assert fluid_lower_bound(device, link, edge, 1.0, 1) == pytest.approx(3.0, rel=1e-14)


@functools.cache
def _lattice(num_cuts: int, steps: int) -> np.ndarray:
    """Every α with entries in multiples of 1/steps summing to 1."""
    points = [
        c for c in itertools.product(range(steps + 1), repeat=num_cuts - 1) if sum(c) <= steps
    ]
    head = np.array(points, dtype=float).reshape(len(points), num_cuts - 1)
    return np.concatenate([head, steps - head.sum(axis=1, keepdims=True)], axis=1) / steps


# 1/200 where the lattice stays small; coarser for K = 4, 5 (C(63, 3), C(34, 4) points).
LATTICE_STEPS = {1: 1, 2: 200, 3: 200, 4: 60, 5: 30}


@pytest.mark.parametrize("num_cuts", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("concurrency", [0, 1, 2])
def test_exact_against_an_alpha_lattice(num_cuts, concurrency):
    rng = np.random.default_rng(10 * num_cuts + concurrency)
    alphas = _lattice(num_cuts, LATTICE_STEPS[num_cuts])
    for _ in range(8):
        device, link, edge = rng.random((3, num_cuts)) * rng.choice([0.01, 1.0, 100.0])
        if rng.random() < 0.3:
            device[0] = edge[-1] = 0.0
        post = float(rng.random())
        bound = fluid_bound(device, link, edge, post, concurrency)
        # The returned mix is a valid α and attains the value...
        assert len(bound.cuts) <= (2 if concurrency == 0 else 3)
        assert all(a > 0 for a in bound.alphas)
        assert sum(bound.alphas) == pytest.approx(1.0, rel=1e-12)
        achieved = _achieved(bound, device, link, edge, post, concurrency)
        assert achieved == pytest.approx(bound.value, rel=1e-12)
        # ...and no α on the lattice does better.
        terms = [alphas @ device, alphas @ link]
        if concurrency:
            terms.append(alphas @ edge / concurrency)
        lattice_best = float(np.max(terms, axis=0).min()) + post
        assert lattice_best >= bound.value - 1e-12 * max(1.0, bound.value)


def test_column_generation_equals_enumerating_every_cut():
    rng = np.random.default_rng(8)
    for trial in range(300):
        num_cuts, concurrency = int(rng.integers(1, 40)), trial % 3
        if trial % 2:
            device, link, edge = rng.random((3, num_cuts))
        else:  # cumulative costs, rounded so that ties and degenerate vertices occur
            device = np.round(np.concatenate([[0.0], np.cumsum(rng.random(num_cuts - 1))]), 1)
            edge = np.round(device[-1] - device, 1)
            link = np.round(rng.random(num_cuts), 1)
        everything, _, _ = min_max(_terms(device, link, edge, concurrency))
        bound = fluid_bound(device, link, edge, 0.0, concurrency)
        assert bound.value == pytest.approx(everything, rel=1e-12, abs=1e-300)


def test_bound_never_exceeds_the_optimum_of_an_exact_split():
    rng = np.random.default_rng(7)
    for trial in range(40):
        num_paths, num_cuts = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        concurrency = trial % 3
        device = np.concatenate([[0.0], np.cumsum(rng.random(num_cuts - 1))])
        edge = (device[-1] - device) * rng.uniform(0.05, 1.0)
        link = rng.random(num_cuts) * rng.uniform(0.2, 3.0)
        shares = rng.dirichlet(np.ones(num_paths))
        post = float(rng.random())
        table = split_table(device, link, edge, shares, post, concurrency)
        best = solve_bf(table)
        optimum = makespan(table, best.order, best.cuts)
        bound = fluid_lower_bound(device, link, edge, post, concurrency)
        assert bound <= optimum * (1 + 1e-12)


def test_rejects_mismatched_arrays():
    with pytest.raises(InternalError):
        fluid_bound(np.zeros(3), np.zeros(2), np.zeros(3), 0.0, 1)
    with pytest.raises(InternalError):
        fluid_bound(np.zeros(0), np.zeros(0), np.zeros(0), 0.0, 1)
