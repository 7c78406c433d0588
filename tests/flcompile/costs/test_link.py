"""The link model: one formula for a message, scalar or elementwise, and Shannon's rate."""

from __future__ import annotations

import numpy as np
import pytest

from flcompile.costs import LinkModel, Shannon


def test_send_seconds_elementwise_equal_the_scalar_ones() -> None:
    link = LinkModel(rate_MBps=2.0, latency_s=0.01)
    sizes = np.array([[0.0, 1e6], [5e5, 3.0]])
    seconds = link.send_s(sizes)
    assert seconds.shape == sizes.shape
    assert seconds.tolist() == [[link.send_s(float(b)) for b in row] for row in sizes]
    assert link.send_s(0.0) == 0.0  # nothing sent costs nothing, not even the latency
    assert link.send_s(1e6) == pytest.approx(0.51)


def test_return_counts_only_with_a_return_rate() -> None:
    assert LinkModel(rate_MBps=2.0, latency_s=0.01).return_s(1e6) == 0.0
    back = LinkModel(rate_MBps=2.0, latency_s=0.01, return_rate_MBps=4.0)
    assert back.return_s(1e6) == pytest.approx(0.26)
    assert back.return_s(0.0) == 0.0


def test_shannon_rate_of_table_i() -> None:
    # B log2(1 + QG/σ²) = 5e6 · log2(101) bits/s ≈ 4.16 MB/s.
    assert Shannon().rate_MBps() == pytest.approx(5e6 * np.log2(101) / 8 / 1e6)


def test_the_devices_own_work_per_message_is_zero_for_nothing_sent() -> None:
    link = LinkModel(rate_MBps=2.0, device_s_per_message=0.01, device_s_per_byte=1e-6)
    sizes = np.array([[0.0, 1e3], [2e3, 0.0]])
    np.testing.assert_allclose(link.device_s(sizes), [[0.0, 0.011], [0.012, 0.0]])
    assert link.device_s(1e3) == pytest.approx(0.011) and link.device_s(0.0) == 0.0
    assert LinkModel(rate_MBps=2.0).device_s(1e3) == 0.0  # not measured: nothing
    bare = LinkModel(2.0, 0.01, device_s_per_message=0.01, device_s_per_byte=1e-6)
    bare = bare.without_overheads()
    assert (bare.latency_s, bare.device_s(1e3), bare.rate_MBps) == (0.0, 0.0, 2.0)
