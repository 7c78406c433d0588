"""TokenBucket: a message of B bytes takes B / rate, idle time buys no burst, chunk by chunk."""

from __future__ import annotations

import pytest

from flcompile.device.pacer import TokenBucket, Unpaced, pacer_for


class FakeTime:
    """A clock that moves only when slept on; `overshoot` adds to every sleep."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.overshoot = overshoot

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.overshoot


def _bucket(rate: float, chunk: int, t: FakeTime) -> TokenBucket:
    return TokenBucket(rate, chunk_bytes=chunk, clock=t.clock, sleep=t.sleep)


def test_a_message_takes_its_bytes_over_the_rate_in_chunks() -> None:
    t = FakeTime()
    bucket = _bucket(1.0, 1000, t)  # 1 MB/s = 1e6 bytes/s
    bucket.transmit(10_500)
    assert t.now == pytest.approx(10_500 / 1e6)
    assert len(t.sleeps) == 11  # ten full chunks and a half one


def test_idle_time_buys_no_burst() -> None:
    t = FakeTime()
    bucket = _bucket(2.0, 4096, t)
    bucket.transmit(100_000)
    t.now += 5.0  # the link idles
    start = t.now
    bucket.transmit(100_000)
    assert t.now - start == pytest.approx(100_000 / 2e6)


def test_a_late_wakeup_is_made_up_within_the_message() -> None:
    t = FakeTime(overshoot=1e-4)
    bucket = _bucket(1.0, 1000, t)
    bucket.transmit(20_000)
    # 20 chunks of 1 ms; each sleep overshoots 0.1 ms, which the next chunk's sleep absorbs.
    assert t.now == pytest.approx(0.020, abs=2e-4)


def test_back_to_back_messages_add_up() -> None:
    t = FakeTime()
    bucket = _bucket(0.5, 16384, t)
    for _ in range(3):
        bucket.transmit(50_000)
    assert t.now == pytest.approx(3 * 50_000 / 0.5e6)


def test_unpaced_and_bad_rates() -> None:
    Unpaced().transmit(10**9)  # returns at once
    with pytest.raises(ValueError):
        TokenBucket(0.0)


def test_pacer_for_paces_only_a_given_rate() -> None:
    assert isinstance(pacer_for(1.8), TokenBucket)
    assert isinstance(pacer_for(None), Unpaced)
    assert isinstance(pacer_for(0.0), Unpaced)
