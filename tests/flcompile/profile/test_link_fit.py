"""flcompile.profile.link_fit: the link law fitted to each payload size's median time."""

from __future__ import annotations

import numpy as np
import pytest

from flcompile.errors import BadInputError
from flcompile.profile.link_fit import fit_link, size_points


def _samples(rate_MBps: float, latency_s: float, sizes, repeats: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repeats):
        for n in sizes:
            noise = rng.normal(0.0, 0.02)  # 2 % jitter
            out.append((n, (latency_s + n / (rate_MBps * 1e6)) * (1 + noise)))
    return out


def test_rate_and_latency_are_recovered_from_noisy_requests() -> None:
    fit = fit_link(_samples(1.8, 0.004, [1_000, 16_000, 64_000, 256_000], repeats=9))
    assert fit.rate_MBps == pytest.approx(1.8, rel=0.03)
    assert fit.latency_s == pytest.approx(0.004, abs=0.001)
    assert [p.nbytes for p in fit.points] == [1_000, 16_000, 64_000, 256_000]
    assert all(p.n == 9 for p in fit.points) and fit.worst_error() < 0.05


def test_a_stray_slow_request_does_not_move_the_medians() -> None:
    samples = _samples(3.0, 0.002, [1_000, 64_000, 256_000], repeats=7, seed=1)
    clean = fit_link(samples)
    samples[0] = (samples[0][0], 5.0)  # one request stalled for seconds
    stalled = fit_link(samples)
    assert stalled.rate_MBps == pytest.approx(clean.rate_MBps, rel=0.05)
    assert stalled.latency_s == pytest.approx(clean.latency_s, abs=5e-4)


def test_a_negative_intercept_is_clamped_and_the_slope_refitted_through_zero() -> None:
    # 1 kB takes "no" time, 100 kB 50 ms: the free line crosses below zero.
    fit = fit_link([(1_000, 0.0), (50_000, 0.026), (100_000, 0.05)])
    assert fit.latency_s == 0.0
    assert fit.rate_MBps == pytest.approx(2.0, rel=0.03)


def test_one_size_or_times_that_do_not_grow_are_refused() -> None:
    with pytest.raises(BadInputError, match="two payload sizes"):
        fit_link([(1_000, 0.01), (1_000, 0.011)])
    with pytest.raises(BadInputError, match="do not grow with the payload size"):
        fit_link([(1_000, 0.01), (256_000, 0.009)])


def test_each_size_is_one_median_point_smallest_first() -> None:
    points = size_points([(64, 0.3), (8, 0.1), (64, 0.1), (64, 0.2), (8, 0.5), (8, 0.2)])
    assert [(p.nbytes, p.median_s, p.n) for p in points] == [(8, 0.2, 3), (64, 0.2, 3)]
