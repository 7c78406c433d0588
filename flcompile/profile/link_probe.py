"""Time messages of several sizes to a running edge server: the samples the link law is fitted to.

Every `flcompile serve` exposes a sink model (`protocol.PROBE_MODEL`): a request carries a
payload of B bytes and is answered with B alone, so its round trip is the payload's way to
the server (serialization, gRPC, Triton's queue, the link) plus a small fixed answer. Sizes
are visited round by round, each round in a new random order, so a drift of the machine's
load touches every size alike; a warm-up round (not kept) opens the channel first. The
probe stops after `rounds` rounds, or at the first request past `time_limit_s` once one
round is done. On a fast link the default sizes all cost about the fixed cost, and the
rate drowns in its noise: the warm-up then grows the largest size fourfold at a time
(up to MAX_GROWN_BYTES) until it takes clearly longer than the smallest. With a pacer
(`--link-rate`) each payload is held for bytes / rate first, as `flcompile run
--link-rate` holds each path's message. Each request's CPU seconds (the whole process's)
are recorded too, and the device's CPU share measured once (`device_send`): the device's
own work per message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from flcompile.deploy import protocol
from flcompile.device.pacer import Pacer, Unpaced
from flcompile.errors import BadInputError
from flcompile.profile import device_send

#: 1, 16, 64 and 256 kB: from a message's fixed cost to a few raw input tiles.
DEFAULT_SIZES_KB = (1.0, 16.0, 64.0, 256.0)
#: The largest payload the warm-up grows to.
MAX_GROWN_BYTES = 16_000_000
#: The warm-up grows the largest size until it takes GROW_FACTOR times the smallest's time
#: plus GROW_MARGIN_S.
GROW_FACTOR = 3.0
GROW_MARGIN_S = 0.005
#: The hint of every failure to reach or use the server.
HINT = "start one with `flcompile serve [OUT ...] --port PORT`, and check --server"


@dataclass(frozen=True)
class Probed:
    """What a probe measured.

    Attributes:
        samples: (bytes, seconds) of every timed request.
        cpu_samples: (bytes, CPU seconds of this process) of the same requests.
        cpu_share: wall seconds per CPU second here (`device_send.cpu_share`).
    """

    samples: list[tuple[int, float]]
    cpu_samples: list[tuple[int, float]]
    cpu_share: float


@dataclass(frozen=True)
class ProbeSettings:
    """How to probe.

    Attributes:
        sizes: payload sizes in bytes (two different ones at least).
        rounds: timed rounds over every size (at most).
        time_limit_s: no request starts past this, once the first round is done.
        timeout_s: how long one request (and the readiness checks) may take.
        seed: the rounds' order.
        grow: let the warm-up add larger sizes on a fast link.
    """

    sizes: tuple[int, ...]
    rounds: int = 9
    time_limit_s: float = 30.0
    timeout_s: float = 60.0
    seed: int = 0
    grow: bool = False


def probe_link(
    address: str,
    settings: ProbeSettings,
    *,
    pacer: Pacer | None = None,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.process_time,
) -> Probed:
    """Time requests of each size to the probe model of the server at `address`.

    Args:
        address: HOST:PORT of the server's gRPC endpoint.
        settings: sizes, rounds and limits.
        pacer: the application's pacing of each payload (default: none).
        clock: seconds, for the timings.
        cpu_clock: this process's CPU seconds, for each request's CPU cost.

    Returns:
        Every timed request's seconds and CPU seconds, and the CPU share.

    Raises:
        BadInputError: the server cannot be reached, has no probe model, or a request failed.
    """
    from flcompile.device.client import EdgeClient

    pacer = pacer or Unpaced()
    client = EdgeClient(address, protocol.PROBE_MODEL, timeout_s=settings.timeout_s)
    payloads: dict[int, np.ndarray] = {}
    calls: list[tuple[int, float]] = []  # (bytes, CPU seconds) of every request, in order

    def timed(nbytes: int) -> float:
        cpu_start, start = cpu_clock(), clock()
        pacer.transmit(nbytes)
        try:
            answer = client.infer(
                {protocol.PROBE_INPUT: payloads.setdefault(nbytes, np.zeros(nbytes, np.uint8))},
                [protocol.PROBE_OUTPUT],
                timeout_s=settings.timeout_s,
            )
        except ConnectionError as e:
            raise BadInputError(f"the link probe failed: {e}", hint=HINT) from e
        seconds = clock() - start
        calls.append((nbytes, cpu_clock() - cpu_start))
        got = int(answer[protocol.PROBE_OUTPUT].reshape(-1)[0])
        if got != nbytes:
            raise BadInputError(f"the server at {address} received {got} of {nbytes} bytes")
        return seconds

    try:
        client.check(
            lacking="the link probe",
            hint="probe a server started by this version: `flcompile serve --port PORT`",
        )
        times = {nbytes: timed(nbytes) for nbytes in settings.sizes}
        if settings.grow:
            settings = replace(settings, sizes=_grown(settings.sizes, times, timed))
        samples = _rounds(settings, timed, clock)
        kept = calls[len(calls) - len(samples) :]  # the rounds' requests are the last ones
        return Probed(samples, kept, device_send.cpu_share())
    finally:
        client.close()


def _grown(
    sizes: tuple[int, ...], times: dict[int, float], timed: Callable[[int], float]
) -> tuple[int, ...]:
    """`sizes`, with larger ones while the largest costs little more than the smallest.

    Each size's time is the faster of two requests, so one stalled request does not stop
    the growth early.
    """
    smallest, largest = min(sizes), max(sizes)
    floor = GROW_FACTOR * min(times[smallest], timed(smallest)) + GROW_MARGIN_S
    seconds, grown = min(times[largest], timed(largest)), largest
    while seconds < floor and grown * 4 <= MAX_GROWN_BYTES:
        grown *= 4
        seconds = min(timed(grown), timed(grown))
    if grown == largest:
        return sizes
    return tuple(sorted({*sizes, grown // 4, grown}))


def _rounds(
    settings: ProbeSettings, timed: Callable[[int], float], clock: Callable[[], float]
) -> list[tuple[int, float]]:
    rng = random.Random(settings.seed)
    deadline = clock() + settings.time_limit_s
    samples: list[tuple[int, float]] = []
    for round_ in range(settings.rounds):
        order = list(settings.sizes)
        rng.shuffle(order)
        for nbytes in order:
            if round_ and clock() > deadline:
                return samples
            samples.append((nbytes, timed(nbytes)))
    return samples


def sizes_from_kb(values: Sequence[float]) -> tuple[int, ...]:
    """Payload sizes in bytes from kB (1 kB = 1000 bytes), deduplicated and sorted.

    Raises:
        BadInputError: fewer than two different sizes.
    """
    sizes = tuple(sorted({max(1, round(v * 1000)) for v in values}))
    if len(sizes) < 2:
        raise BadInputError("--sizes needs two different sizes or more", hint="e.g. 1 16 64 256")
    return sizes
