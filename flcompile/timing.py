"""Time device.onnx, edge.onnx and the original model in onnxruntime (docs/design.md §7).

Each model gets its own CPU session with a fixed number of intra-op threads (inter-op 1);
a few warm-up runs are discarded and the median of the timed runs is reported.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from flcompile.errors import InternalError, UsageError
from flcompile.verify import ModelLike, open_session

logger = logging.getLogger(__name__)

_DEFAULT_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


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
        original_s: median seconds of the original model (with the device's threads).
        runs: timed runs per model.
        device_threads: intra-op threads of the device and original sessions.
        edge_threads: intra-op threads of the edge session (None: onnxruntime's default).
    """

    device_s: float
    edge_s: float
    original_s: float
    runs: int
    device_threads: int | None
    edge_threads: int | None

    def to_json(self) -> dict[str, Any]:
        """The `measured{...}` object of plan.json (docs/design.md §6)."""
        return {
            "device_s": self.device_s,
            "edge_s": self.edge_s,
            "original_s": self.original_s,
            "runs": self.runs,
            "device_threads": self.device_threads,
            "edge_threads": self.edge_threads,
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
    warmup: int = 2,
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
        warmup: untimed runs before them.
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
    warmup: int = 2,
    graph_optimization_level: ort.GraphOptimizationLevel = _DEFAULT_LEVEL,
    progress: bool = False,
) -> MeasuredTimes:
    """Time device.onnx, edge.onnx and the original model.

    The edge is timed on the device's outputs, computed once beforehand. The original runs
    with the device's thread count, since it is the local-only reference.

    Args:
        original: the source model (ModelProto or path).
        device: device.onnx.
        edge: edge.onnx; its inputs are device.onnx's outputs.
        feeds: the original's inputs.
        device_threads: intra-op threads for the device and the original (None: default).
        edge_threads: intra-op threads for the edge (None: onnxruntime's default).
        runs: timed runs per model.
        warmup: untimed runs before them.
        graph_optimization_level: onnxruntime's graph optimization level.
        progress: show tqdm progress bars.

    Returns:
        The medians, for plan.json's `measured`.

    Raises:
        UsageError: runs < 1, warmup < 0 or a thread count < 1.
        BadInputError: onnxruntime cannot load a model.
        InternalError: edge.onnx needs an input that device.onnx does not produce.
    """
    _check_counts(device_threads, runs, warmup)
    _check_counts(edge_threads, runs, warmup)
    level = graph_optimization_level
    with open_session(device, graph_optimization_level=level, threads=device_threads) as sess:
        inputs = _session_feeds(sess, feeds)
        outputs = [o.name for o in sess.get_outputs()]
        sent = dict(zip(outputs, sess.run(outputs, inputs), strict=True))
        device_times = _time_session(
            sess, feeds, runs=runs, warmup=warmup, label="device", progress=progress
        )
    edge_result = time_model(
        edge,
        sent,
        threads=edge_threads,
        runs=runs,
        warmup=warmup,
        graph_optimization_level=level,
        progress=progress,
        label="edge",
    )
    original_result = time_model(
        original,
        feeds,
        threads=device_threads,
        runs=runs,
        warmup=warmup,
        graph_optimization_level=level,
        progress=progress,
        label="original",
    )
    device_s = float(statistics.median(device_times))
    logger.info(
        "time device: median %.3f ms; edge %.3f ms; original %.3f ms",
        device_s * 1e3,
        edge_result.median_s * 1e3,
        original_result.median_s * 1e3,
    )
    return MeasuredTimes(
        device_s=device_s,
        edge_s=edge_result.median_s,
        original_s=original_result.median_s,
        runs=runs,
        device_threads=device_threads,
        edge_threads=edge_threads,
    )
