"""The analytic cost and link models of docs/design.md §4: seconds per node and per send."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BYTES_PER_MB = 1e6

# A float, or a numpy array computed elementwise.
FloatOrArray = float | np.ndarray

# The paper's Table I.
PAPER_DEVICE_FLOPS = 2.23e8
PAPER_EDGE_FLOPS = 4.32e9
PAPER_BANDWIDTH_HZ = 5e6
PAPER_TX_POWER_W = 0.1
PAPER_NOISE_W = 1e-9
PAPER_CHANNEL_GAIN = 1e-6


@dataclass(frozen=True)
class ComputeModel:
    """How long the device and the edge take for a given number of FLOPs.

    Attributes:
        device_flops: f_end, the device's speed in FLOP/s.
        edge_flops: f_es, the edge server's speed in FLOP/s.
        overhead_dev_s: fixed cost per node run on the device.
        overhead_edge_s: fixed cost per node run on the edge.
        edge_concurrency: 1 = one node at a time (default); 0 = unlimited (the paper's
            Eq. 4); k > 1 = k paths at once.
        kind: "analytic" or "profiled".
    """

    device_flops: float = PAPER_DEVICE_FLOPS
    edge_flops: float = PAPER_EDGE_FLOPS
    overhead_dev_s: float = 0.0
    overhead_edge_s: float = 0.0
    edge_concurrency: int = 1
    kind: str = "analytic"

    def device_s(self, flops: FloatOrArray, nodes: int = 1) -> FloatOrArray:
        """Seconds for `nodes` nodes totalling `flops` FLOPs on the device (elementwise)."""
        return nodes * self.overhead_dev_s + flops / self.device_flops

    def edge_s(self, flops: FloatOrArray, nodes: int = 1) -> FloatOrArray:
        """Seconds for `nodes` nodes totalling `flops` FLOPs on the edge (elementwise)."""
        return nodes * self.overhead_edge_s + flops / self.edge_flops


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
    """

    rate_MBps: float
    latency_s: float = 0.0
    shannon: Shannon | None = None
    return_rate_MBps: float | None = None

    def send_s(self, nbytes: float) -> float:
        """Seconds to send one message of `nbytes` bytes to the edge (0 bytes costs nothing)."""
        if nbytes <= 0:
            return 0.0
        return self.latency_s + nbytes / (self.rate_MBps * BYTES_PER_MB)

    def return_s(self, nbytes: float) -> float:
        """Seconds to return `nbytes` of results to the device; 0 when returns are ignored."""
        if self.return_rate_MBps is None or nbytes <= 0:
            return 0.0
        return self.latency_s + nbytes / (self.return_rate_MBps * BYTES_PER_MB)
