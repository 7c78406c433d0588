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


def time_model(
    model: ModelLike,
    feeds: Mapping[str, np.ndarray],
    *,
    threads: int | None = 1,
    runs: int = 10,
    warmup: int = 1,
    graph_optimization_level: ort.GraphOptimizationLevel = _DEFAULT_LEVEL,
    progress: bool = False,
    label: str = "model",
) -> TimingResult:
    """Time `model` in onnxruntime on `feeds`.

    Args:
        model: a ModelProto or the path of an .onnx file.
        feeds: values for the model's inputs (extra entries are ignored).
        threads: intra-op threads (inter-op is 1); None keeps onnxruntime's default.
        runs: timed runs; the median is reported.
        warmup: untimed runs before them (one: the first run allocates the buffers).
        graph_optimization_level: onnxruntime's graph optimization level.
        progress: show a tqdm progress bar over the timed runs.
        label: the model's name in the progress bar and the log.

    Returns:
        The median and every timed run, in seconds (time.perf_counter around session.run).

    Raises:
        UsageError: runs < 1, warmup < 0 or threads < 1.
        BadInputError: onnxruntime cannot load the model.
        InternalError: `feeds` lacks one of the model's inputs.
    """
    _check_counts(threads, runs, warmup)
    with open_session(
        model, graph_optimization_level=graph_optimization_level, threads=threads
    ) as session:
        times = _time_session(
            session, feeds, runs=runs, warmup=warmup, label=label, progress=progress
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
    device_threads: int | None = 1,
    edge_threads: int | None = 1,
    runs: int = 10,
    warmup: int = 1,
    graph_optimization_level: ort.GraphOptimizationLevel = _DEFAULT_LEVEL,
    progress: bool = False,
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
        device_threads: intra-op threads for the device and the original (None: default).
        edge_threads: intra-op threads for the edge and the original (None: default).
        runs: timed runs per model.
        warmup: untimed runs before them (one: the first run allocates the buffers).
        graph_optimization_level: onnxruntime's graph optimization level.
        progress: show tqdm progress bars.
        sessions: where to open the sessions (e.g. the ones verification opened); each is
            released once timed. None: a private cache, closed on return.

    Returns:
        The medians, for plan.json's `measured`.

    Raises:
        UsageError: runs < 1, warmup < 0 or a thread count < 1.
        BadInputError: onnxruntime cannot load a model.
        InternalError: edge.onnx needs an input that device.onnx does not produce.
    """
    _check_counts(device_threads, runs, warmup)
    _check_counts(edge_threads, runs, warmup)
    if sessions is None:
        with SessionCache() as own:
            return time_split(
                original,
                device,
                edge,
                feeds,
                device_threads=device_threads,
                edge_threads=edge_threads,
                runs=runs,
                warmup=warmup,
                graph_optimization_level=graph_optimization_level,
                progress=progress,
                sessions=own,
            )
    default = default_threads()

    def timed(model: ModelLike, threads: int | None, inputs: Mapping, label: str) -> float:
        session = sessions.get(
            model, threads=threads, graph_optimization_level=graph_optimization_level
        )
        count = default if threads is None else threads
        times = _time_session(
            session,
            inputs,
            runs=runs,
            warmup=warmup,
            label=f"{label} ({threads_text(count)})",
            progress=progress,
        )
        # Timing is each session's last use: free it before the next model loads.
        sessions.release(model, threads=threads, graph_optimization_level=graph_optimization_level)
        return float(statistics.median(times))

    sess = sessions.get(
        device, threads=device_threads, graph_optimization_level=graph_optimization_level
    )
    outputs = [o.name for o in sess.get_outputs()]
    sent = dict(zip(outputs, sess.run(outputs, _session_feeds(sess, feeds)), strict=True))
    del sess
    device_s = timed(device, device_threads, feeds, "device")
    edge_s = timed(edge, edge_threads, sent, "edge")
    original_edge_s = timed(original, edge_threads, feeds, "original")
    if device_threads == edge_threads:
        original_s = original_edge_s
    else:
        original_s = timed(original, device_threads, feeds, "original")
    measured = MeasuredTimes(
        device_s=device_s,
        edge_s=edge_s,
        original_s=original_s,
        original_edge_threads_s=original_edge_s,
        runs=runs,
        device_threads=device_threads,
        edge_threads=edge_threads,
        default_threads=default,
    )
    logger.info(
        "time device: median %.3f ms; edge %.3f ms; original %.3f ms (%d threads), "
        "%.3f ms (%d threads); edge/original %.3fx",
        device_s * 1e3,
        edge_s * 1e3,
        original_s * 1e3,
        measured.device_thread_count,
        original_edge_s * 1e3,
        measured.edge_thread_count,
        measured.edge_over_original,
    )
    return measured
