"""flcompile.profile.device_send: the device's own work per message, and its CPU share."""

from __future__ import annotations

import itertools

import pytest

from flcompile.profile.device_send import cpu_share, fit_device_send


def test_the_cpu_law_is_fitted_to_each_sizes_median_and_scaled_by_the_share() -> None:
    sizes = [1_000, 16_000, 64_000, 256_000]
    samples = [(n, 0.0007 + 4e-9 * n) for n in sizes for _ in range(5)]
    samples += [(1_000, 0.05)]  # one request that met a stall: the median ignores it
    device = fit_device_send(samples, share=20.0)
    assert device.cpu_s_per_message == pytest.approx(0.0007)
    assert device.cpu_s_per_byte == pytest.approx(4e-9)
    assert device.s_per_message == pytest.approx(0.014)
    assert device.s_per_byte == pytest.approx(8e-8)
    assert device.to_json()["cpu_share"] == 20.0


def test_no_cost_per_byte_leaves_the_mean_per_message_and_nothing_is_negative() -> None:
    flat = fit_device_send([(1_000, 0.002), (64_000, 0.001)], share=1.0)
    assert (flat.cpu_s_per_message, flat.cpu_s_per_byte) == (pytest.approx(0.0015), 0.0)
    steep = fit_device_send([(1_000, 0.0), (2_000, 0.01), (3_000, 0.02)], share=1.0)
    assert steep.cpu_s_per_message == 0.0 and steep.cpu_s_per_byte > 0
    assert fit_device_send([(1_000, 0.01)], share=3.0).s_per_message == 0.0  # one size


def test_the_share_is_wall_seconds_per_cpu_second() -> None:
    wall = itertools.count(0.0, 0.01)  # 10 ms per look at the clock
    cpu = iter([0.0, 0.025])  # the loop got 25 ms of CPU
    share = cpu_share(0.5, wall=lambda: next(wall), cpu=lambda: next(cpu))
    assert share == pytest.approx(0.51 / 0.025, rel=0.05)  # ~0.5 s of wall clock
    assert cpu_share(0.05) >= 1.0  # a real spin: never below one
