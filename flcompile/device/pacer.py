"""Application-level link pacing: hold each message for as long as a link of a given rate takes.

`TokenBucket` lets a message go once its bytes have been earned at the rate, chunk by
chunk (a token bucket whose burst is one chunk, starting empty after idle time), so a
message of B bytes takes B / rate, as the cost model's link does (docs/design.md §4). It
paces one sender: the runner's sender thread, which is the link, first come first served.
Where the link is shaped by the kernel instead (tc), `Unpaced` lets everything through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from flcompile.costs import BYTES_PER_MB

#: Bytes per chunk: the pacing's granularity.
CHUNK_BYTES = 16 * 1024
_BYTE_FRACTION = 1e-6


class Pacer(Protocol):
    """What the runner's sender needs from a link: hold a message for its transfer time."""

    def transmit(self, nbytes: int) -> None:
        """Block until `nbytes` could have gone over the link."""


class Unpaced:
    """No pacing: the real link, or one shaped outside the application."""

    rate_MBps: float | None = None

    def transmit(self, nbytes: int) -> None:
        """Return at once."""


class TokenBucket:
    """A link of `rate_MBps` (1 MB = 1e6 bytes), paced in chunks of `chunk_bytes`.

    Args:
        rate_MBps: the rate.
        chunk_bytes: the granularity of the waits.
        clock: monotonic seconds.
        sleep: sleeps for seconds.
    """

    def __init__(
        self,
        rate_MBps: float,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_MBps > 0 or chunk_bytes < 1:
            raise ValueError("a token bucket needs a positive rate and chunk size")
        self.rate_MBps = rate_MBps
        self._bytes_per_s = rate_MBps * BYTES_PER_MB
        self._chunk = chunk_bytes
        self._clock = clock
        self._sleep = sleep
        self._tokens = 0.0
        self._stamp: float | None = None

    def _refill(self, *, cap: float) -> None:
        now = self._clock()
        if self._stamp is not None:
            self._tokens = min(self._tokens + (now - self._stamp) * self._bytes_per_s, cap)
        self._stamp = now

    def transmit(self, nbytes: int) -> None:
        """Block until `nbytes` have been earned at the rate, one chunk at a time.

        Idle time earns nothing (no burst), so every message takes its full transfer time
        from when it starts; within a message, a sleep that overshoots is made up.
        """
        self._refill(cap=0.0)
        remaining = int(nbytes)
        while remaining > 0:
            chunk = min(self._chunk, remaining)
            self._tokens -= chunk
            remaining -= chunk
            while self._tokens < -_BYTE_FRACTION:  # not 0: float rounding would spin
                self._sleep(-self._tokens / self._bytes_per_s)
                self._refill(cap=float(self._chunk))


def pacer_for(rate_MBps: float | None) -> Pacer:
    """The pacer of a `--link-rate`: a token bucket at that rate, or none when it is unset.

    Args:
        rate_MBps: the application-paced link rate in MB/s, or None (or 0) for unpaced.

    Returns:
        A `TokenBucket` or `Unpaced`.
    """
    return TokenBucket(rate_MBps) if rate_MBps else Unpaced()
