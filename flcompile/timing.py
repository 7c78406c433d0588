"""Time device.onnx, edge.onnx and the original model in onnxruntime (docs/design.md §7).

Each model gets its own CPU session with a fixed number of intra-op threads (inter-op 1);
a warm-up run (a session's first run allocates its buffers) is discarded and the median
of the timed runs is reported. The original is timed at the device's thread count and at
the edge's, so that edge.onnx is compared with the original like for like.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from flcompile.errors import InternalError, UsageError
from flcompile.verify import ModelLike, SessionCache, open_session

logger = logging.getLogger(__name__)

_DEFAULT_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
_CPU_DIR = "/sys/devices/system/cpu"


def default_threads() -> int:
    """The intra-op thread count onnxruntime uses when none is set: one per physical core.

    onnxruntime counts cores with cpuinfo, which on Linux groups the logical CPUs by their
    thread siblings; this reads the same sysfs files. Elsewhere, or when they are missing,
    it is onnxruntime's own fallback: half the logical CPUs, at least 1.
    """
    try:
        cpus = [d for d in os.listdir(_CPU_DIR) if d.startswith("cpu") and d[3:].isdigit()]
        cores = set()
        for cpu in cpus:
            with open(f"{_CPU_DIR}/{cpu}/topology/thread_siblings_list") as f:
                cores.add(f.read().strip())
    except OSError:
        cores = set()
    if cores:
        return len(cores)
    return max(1, (os.cpu_count() or 1) // 2)


def threads_text(count: int, default: bool = False) -> str:
    """ "1 thread", "4 threads", or "2 threads (onnxruntime's default)"."""
    text = f"{count} thread{'s' if count != 1 else ''}"
    return f"{text} (onnxruntime's default)" if default else text


@dataclass(frozen=True)
class TimingResult:
    """Wall times of one model.

    Attributes:
        median_s: the median of the timed runs, in seconds.
        runs: how many runs were timed (warm-up excluded).
        threads: the intra-op thread count (None: onnxruntime's default).
        all_s: every timed run, in seconds, in the order they ran.
    """

    median_s: float
    runs: int
    threads: int | None
    all_s: tuple[float, ...]


@dataclass(frozen=True)
class MeasuredTimes:
    """Median wall times of the split and the original, as reported in plan.json.

    Attributes:
        device_s: median seconds of device.onnx.
        edge_s: median seconds of edge.onnx, fed with device.onnx's outputs.
        original_s: median seconds of the original model with the device's threads.
        original_edge_threads_s: median seconds of the original with the edge's threads.
        runs: timed runs per model.
        device_threads: intra-op threads asked for the device (None: onnxruntime's default).
        edge_threads: intra-op threads asked for the edge (None: onnxruntime's default).
        default_threads: what onnxruntime's default is on this machine (`default_threads`).
    """

    device_s: float
    edge_s: float
    original_s: float
    original_edge_threads_s: float
    runs: int
    device_threads: int | None
    edge_threads: int | None
    default_threads: int

    @property
    def device_thread_count(self) -> int:
        """The device's and the first original timing's intra-op threads, as a number."""
        return self.default_threads if self.device_threads is None else self.device_threads

    @property
    def edge_thread_count(self) -> int:
        """The edge's and the second original timing's intra-op threads, as a number."""
        return self.default_threads if self.edge_threads is None else self.edge_threads

    @property
    def edge_over_original(self) -> float:
        """edge.onnx's median over the original's at the same thread count: what recomputed
        halos, smaller convolutions and the fuse cost on this machine (not a latency)."""
        return self.edge_s / self.original_edge_threads_s

    def to_json(self) -> dict[str, Any]:
        """plan.json's `measured{...}` (docs/design.md §6); thread counts are numbers."""
        return {
            "device_s": self.device_s,
            "edge_s": self.edge_s,
            "original_s": self.original_s,
            "original_edge_threads_s": self.original_edge_threads_s,
            "edge_over_original": self.edge_over_original,
            "runs": self.runs,
            "device_threads": self.device_thread_count,
            "edge_threads": self.edge_thread_count,
            "default_threads": self.default_threads,
            "requested_threads": {"device": self.device_threads, "edge": self.edge_threads},
        }


def _check_counts(threads: int | None, runs: int, warmup: int) -> None:
    if runs < 1:
        raise UsageError(f"--runs must be at least 1, got {runs}", hint="pass --runs 10")
    if warmup < 0:
        raise UsageError(f"warm-up runs must be 0 or more, got {warmup}")
    if threads is not None and threads < 1:
        raise UsageError(
            f"thread count must be at least 1, got {threads}",
            hint="pass --device-threads/--edge-threads 1 or more",
        )


def _session_feeds(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InternalError(f"no value to time the model with for input(s) {', '.join(missing)}")
    return {n: feeds[n] for n in names}


def _time_session(
    session: ort.InferenceSession,
    feeds: Mapping[str, np.ndarray],
    *,
    runs: int,
    warmup: int,
    label: str,
    progress: bool,
) -> tuple[float, ...]:
    inputs = _session_feeds(session, feeds)
    for _ in range(warmup):
        session.run(None, inputs)
    times = []
    for _ in tqdm(range(runs), desc=f"timing {label}", disable=not progress, leave=False):
        start = time.perf_counter()
        session.run(None, inputs)
        times.append(time.perf_counter() - start)
    return tuple(times)


@dataclass(frozen=True)
class TimingOptions:
    """How `time_split` (and `time_model`) time: runs, warm-up, threads and progress.

    Attributes:
        runs: timed runs per model; the median is reported.
        warmup: untimed runs before them (one: the first run allocates the buffers).
        device_threads: intra-op threads for the device and the original (None: default).
        edge_threads: intra-op threads for the edge and the original (None: default).
        progress: show tqdm progress bars over the timed runs.
    """

    runs: int = 10
    warmup: int = 1
    device_threads: int | None = 1
    edge_threads: int | None = 1
    progress: bool = False


def time_model(
    model: ModelLike,
    feeds: Mapping[str, np.ndarray],
    *,
    threads: int | None = 1,
    options: TimingOptions | None = None,
    label: str = "model",
) -> TimingResult:
    """Time `model` in onnxruntime on `feeds`.

    Args:
        model: a ModelProto or the path of an .onnx file.
        feeds: values for the model's inputs (extra entries are ignored).
        threads: intra-op threads (inter-op is 1); None keeps onnxruntime's default.
        options: runs, warm-up and progress bar (None: the defaults); its thread counts
            are `time_split`'s, `threads` is this model's.
        label: the model's name in the progress bar and the log.

    Returns:
        The median and every timed run, in seconds (time.perf_counter around session.run).

    Raises:
        UsageError: runs < 1, warmup < 0 or threads < 1.
        BadInputError: onnxruntime cannot load the model.
        InternalError: `feeds` lacks one of the model's inputs.
    """
    options = options or TimingOptions()
    runs = options.runs
    _check_counts(threads, runs, options.warmup)
    with open_session(model, graph_optimization_level=_DEFAULT_LEVEL, threads=threads) as session:
        times = _time_session(
            session,
            feeds,
            runs=runs,
            warmup=options.warmup,
            label=label,
            progress=options.progress,
        )
    median = float(statistics.median(times))
    logger.info(
        "time %s: median %.3f ms over %d runs, %s threads",
        label,
        median * 1e3,
        runs,
        threads if threads is not None else "default",
    )
    return TimingResult(median_s=median, runs=runs, threads=threads, all_s=times)


def time_split(
    original: ModelLike,
    device: ModelLike,
    edge: ModelLike,
    feeds: Mapping[str, np.ndarray],
    *,
    options: TimingOptions | None = None,
    sessions: SessionCache | None = None,
) -> MeasuredTimes:
    """Time device.onnx, edge.onnx and the original model (at both thread counts).

    The edge is timed on the device's outputs, computed once beforehand. The original runs
    with the device's thread count, the local-only reference, and with the edge's, so that
    edge.onnx compares with it like for like (`MeasuredTimes.edge_over_original`); with
    equal thread settings it is timed once.

    Args:
        original: the source model (ModelProto, bytes or path).
        device: device.onnx.
        edge: edge.onnx; its inputs are device.onnx's outputs.
        feeds: the original's inputs.
        options: runs, warm-up, thread counts and progress (None: the defaults).
        sessions: where to open the sessions (e.g. the ones verification opened); each is
            released once timed. None: a private cache, closed on return.

    Returns:
        The medians, for plan.json's `measured`.

    Raises:
        UsageError: runs < 1, warmup < 0 or a thread count < 1.
        BadInputError: onnxruntime cannot load a model.
        InternalError: edge.onnx needs an input that device.onnx does not produce.
    """
    options = options or TimingOptions()
    _check_counts(options.device_threads, options.runs, options.warmup)
    _check_counts(options.edge_threads, options.runs, options.warmup)
    if sessions is None:
        with SessionCache() as own:
            return time_split(original, device, edge, feeds, options=options, sessions=own)
    timer = _SplitTimer(sessions, options, default_threads())
    sent = _device_outputs(sessions.get(device, threads=options.device_threads), feeds)
    device_s = timer.median(device, options.device_threads, feeds, "device")
    edge_s = timer.median(edge, options.edge_threads, sent, "edge")
    original_edge_s = timer.median(original, options.edge_threads, feeds, "original")
    if options.device_threads == options.edge_threads:
        original_s = original_edge_s
    else:
        original_s = timer.median(original, options.device_threads, feeds, "original")
    measured = MeasuredTimes(
        device_s=device_s,
        edge_s=edge_s,
        original_s=original_s,
        original_edge_threads_s=original_edge_s,
        runs=options.runs,
        device_threads=options.device_threads,
        edge_threads=options.edge_threads,
        default_threads=timer.default,
    )
    _log_measured(measured)
    return measured


def _device_outputs(
    session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """What device.onnx sends: its outputs on `feeds`, by name (edge.onnx's inputs)."""
    outputs = [o.name for o in session.get_outputs()]
    return dict(zip(outputs, session.run(outputs, _session_feeds(session, feeds)), strict=True))


@dataclass(frozen=True)
class _SplitTimer:
    """Times one model of the split after another in `sessions`, releasing each when done."""

    sessions: SessionCache
    options: TimingOptions
    default: int

    def median(self, model: ModelLike, threads: int | None, inputs: Mapping, label: str) -> float:
        session = self.sessions.get(model, threads=threads)
        count = self.default if threads is None else threads
        times = _time_session(
            session,
            inputs,
            runs=self.options.runs,
            warmup=self.options.warmup,
            label=f"{label} ({threads_text(count)})",
            progress=self.options.progress,
        )
        # Timing is each session's last use: free it before the next model loads.
        self.sessions.release(model, threads=threads)
        return float(statistics.median(times))


def _log_measured(measured: MeasuredTimes) -> None:
    logger.info(
        "time device: median %.3f ms; edge %.3f ms; original %.3f ms (%d threads), "
        "%.3f ms (%d threads); edge/original %.3fx",
        measured.device_s * 1e3,
        measured.edge_s * 1e3,
        measured.original_s * 1e3,
        measured.device_thread_count,
        measured.original_edge_threads_s * 1e3,
        measured.edge_thread_count,
        measured.edge_over_original,
    )
