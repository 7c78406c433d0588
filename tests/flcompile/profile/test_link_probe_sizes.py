"""flcompile.profile.link_probe without a server: the sizes, their growth on a fast link, rounds."""

from __future__ import annotations

import pytest

from flcompile.errors import BadInputError
from flcompile.profile import link_probe


def _link(rate_Bps: float, latency_s: float, asked: list[int]):
    def timed(nbytes: int) -> float:
        asked.append(nbytes)
        return latency_s + nbytes / rate_Bps

    return timed


def test_on_a_fast_link_the_largest_size_grows_until_it_costs_clearly_more() -> None:
    # 300 MB/s and 4 ms per message: 256 kB costs 4.9 ms, nothing next to the 4 ms.
    asked: list[int] = []
    timed = _link(300e6, 0.004, asked)
    sizes = (1_000, 256_000)
    grown = link_probe._grown(sizes, {n: timed(n) for n in sizes}, timed)
    # Until one costs 3 x 4 ms + 5 ms: 4.096 MB takes 17.7 ms.
    assert grown == (1_000, 256_000, 1_024_000, 4_096_000)
    assert max(asked) == 4_096_000


def test_on_a_slow_link_the_sizes_stay() -> None:
    timed = _link(1.8e6, 0.004, [])
    sizes = (1_000, 16_000, 64_000, 256_000)
    assert link_probe._grown(sizes, {n: timed(n) for n in sizes}, timed) == sizes


def test_growth_stops_at_the_cap_on_a_link_too_fast_to_measure() -> None:
    timed = _link(1e15, 0.004, [])
    grown = link_probe._grown((1_000, 256_000), {1_000: 0.004, 256_000: 0.004}, timed)
    assert max(grown) <= link_probe.MAX_GROWN_BYTES and max(grown) * 4 > link_probe.MAX_GROWN_BYTES


def test_rounds_visit_every_size_and_stop_at_the_time_limit_after_the_first() -> None:
    now = [0.0]

    def timed(nbytes: int) -> float:
        now[0] += 1.0  # every request takes a second
        return 1.0

    settings = link_probe.ProbeSettings(sizes=(1, 2, 3), rounds=9, time_limit_s=4.5)
    samples = link_probe._rounds(settings, timed, lambda: now[0])
    # The first round always completes (3 s); the limit stops the second after 2 requests.
    assert sorted(n for n, _ in samples[:3]) == [1, 2, 3] and len(samples) == 5
    assert len(link_probe._rounds(settings, timed, lambda: 0.0)) == 27  # no limit: 9 rounds


def test_sizes_are_given_in_kb_and_need_two_different_ones() -> None:
    assert link_probe.sizes_from_kb([64, 1, 16, 16]) == (1_000, 16_000, 64_000)
    with pytest.raises(BadInputError, match="two different sizes"):
        link_probe.sizes_from_kb([4, 4.0001])
