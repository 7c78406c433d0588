"""What a message costs: the device→edge link of docs/design.md §4 (latency + bytes / rate).

The rate is given directly or follows from radio parameters by Shannon's formula (the
paper's Eq. 2). 1 MB = 1e6 bytes everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flcompile.costs.node_cost import FloatOrArray

BYTES_PER_MB = 1e6

# The paper's Table I.
PAPER_BANDWIDTH_HZ = 5e6
PAPER_TX_POWER_W = 0.1
PAPER_NOISE_W = 1e-9
PAPER_CHANNEL_GAIN = 1e-6


@dataclass(frozen=True)
class Shannon:
    """Radio parameters from which the rate follows by Shannon's formula (the paper's Eq. 2)."""

    bandwidth_hz: float = PAPER_BANDWIDTH_HZ
    tx_power_w: float = PAPER_TX_POWER_W
    channel_gain: float = PAPER_CHANNEL_GAIN
    noise_w: float = PAPER_NOISE_W

    def rate_MBps(self) -> float:
        """R = B·log2(1 + Q·G/σ²) bits/s, as MB/s (1 MB = 1e6 bytes)."""
        bits = self.bandwidth_hz * math.log2(1 + self.tx_power_w * self.channel_gain / self.noise_w)
        return bits / 8 / BYTES_PER_MB


@dataclass(frozen=True)
class LinkModel:
    """The device→edge channel: one message costs latency + bytes / rate.

    Attributes:
        rate_MBps: R in MB/s, 1 MB = 1e6 bytes.
        latency_s: fixed cost per message.
        shannon: the radio parameters R was derived from, or None when given directly.
        return_rate_MBps: rate for sending the results back, or None to ignore the return.
        profile: the link profile file rate and latency were measured in
            (`flcompile profile --server`), or None.
    """

    rate_MBps: float
    latency_s: float = 0.0
    shannon: Shannon | None = None
    return_rate_MBps: float | None = None
    profile: str | None = None

    def send_s(self, nbytes: FloatOrArray) -> FloatOrArray:
        """Seconds to send one message of `nbytes` bytes to the edge (elementwise; 0 bytes
        cost nothing)."""
        return self._message_s(nbytes, self.rate_MBps)

    def return_s(self, nbytes: float) -> float:
        """Seconds to return `nbytes` of results to the device; 0 when returns are ignored."""
        if self.return_rate_MBps is None:
            return 0.0
        return self._message_s(nbytes, self.return_rate_MBps)

    def _message_s(self, nbytes: FloatOrArray, rate_MBps: float) -> FloatOrArray:
        seconds = self.latency_s + nbytes / (rate_MBps * BYTES_PER_MB)
        if isinstance(nbytes, np.ndarray):
            return np.where(nbytes > 0, seconds, 0.0)
        return seconds if nbytes > 0 else 0.0
