"""What a message costs: the device→edge link of docs/design.md §4 (latency + bytes / rate).

The rate is given directly or follows from radio parameters by Shannon's formula (the
paper's Eq. 2). 1 MB = 1e6 bytes everywhere. A message also costs the device its own work
(building, serializing and handing the request over, handling its answer), measured by the
link probe: `device_s` is charged on the device's timeline, ahead of the send (0 unless a
link profile measured it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
        device_s_per_message: the device's own seconds per message sent (0: not measured).
        device_s_per_byte: and per byte of the message.
    """

    rate_MBps: float
    latency_s: float = 0.0
    shannon: Shannon | None = None
    return_rate_MBps: float | None = None
    profile: str | None = None
    device_s_per_message: float = 0.0
    device_s_per_byte: float = 0.0

    def send_s(self, nbytes: FloatOrArray) -> FloatOrArray:
        """Seconds to send one message of `nbytes` bytes to the edge (elementwise; 0 bytes
        cost nothing)."""
        return self._message_s(nbytes, self.rate_MBps)

    def device_s(self, nbytes: FloatOrArray) -> FloatOrArray:
        """The device's own seconds to send one message of `nbytes` bytes (elementwise;
        0 bytes cost nothing), charged on its timeline before the message leaves."""
        seconds = self.device_s_per_message + self.device_s_per_byte * nbytes
        if isinstance(nbytes, np.ndarray):
            return np.where(nbytes > 0, seconds, 0.0)
        return seconds if nbytes > 0 else 0.0

    def without_overheads(self) -> LinkModel:
        """The link without per-message costs (no latency, no device work): for lower bounds."""
        return replace(self, latency_s=0.0, device_s_per_message=0.0, device_s_per_byte=0.0)

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
