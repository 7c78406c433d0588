"""Per-node kernel times from onnxruntime's own profiler (SessionOptions.enable_profiling).

onnxruntime writes a Chrome trace; each node run is an event of category "Node" named
`<node name>_kernel_time`, with its duration in microseconds and its op type in
`args.op_name`. A warm-up run is discarded and each node's median over the timed runs kept.

A run costs more than its kernels: the executor's work between them, the session's around
them, and the Python call (docs/design.md §4, "Run overhead"). That run overhead is each
run's wall time less the kernel times inside its `model_run` event.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from flcompile.errors import InternalError

KERNEL_SUFFIX = "_kernel_time"
#: The trace event of one whole `InferenceSession.run`.
RUN_EVENT = "model_run"


@dataclass(frozen=True)
class NodeTime:
    """One node's measured kernel time.

    Attributes:
        name: the node's name in the model.
        op_type: its op type, as onnxruntime reports it.
        seconds: the median kernel time over the timed runs.
    """

    name: str
    op_type: str
    seconds: float


@dataclass(frozen=True)
class ModelProfile:
    """One model's measured runs.

    Attributes:
        nodes: node name -> its kernel time.
        run_overhead_s: what a run costs beyond its kernels (wall less kernel times).
    """

    nodes: dict[str, NodeTime]
    run_overhead_s: float


def parse_trace(
    events: Iterable[Mapping],
    warmup: int = 1,
    statistic: Callable[[list[float]], float] = statistics.median,
) -> dict[str, NodeTime]:
    """Each node's kernel time in a parsed onnxruntime profile: the median of its runs.

    Args:
        events: the trace's events (the JSON list onnxruntime writes).
        warmup: how many of each node's first runs to discard.
        statistic: what to take of the other runs' times instead of the median.

    Returns:
        Node name -> its time; nodes without a timed run are left out.
    """
    runs: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, str] = {}
    for event in filter(_is_kernel, events):
        node = event["name"][: -len(KERNEL_SUFFIX)]
        runs[node].append(float(event["dur"]) * 1e-6)
        ops[node] = event.get("args", {}).get("op_name", "")
    return {
        node: NodeTime(node, ops[node], statistic(times[warmup:]))
        for node, times in runs.items()
        if len(times) > warmup
    }


def _is_kernel(event: Mapping) -> bool:
    """Whether a trace event is one node's kernel run."""
    return event.get("cat") == "Node" and event.get("name", "").endswith(KERNEL_SUFFIX)


def run_overheads(events: Iterable[Mapping], walls_s: list[float]) -> list[float]:
    """Each run's wall time less the kernel times inside its `model_run` event.

    Args:
        events: the trace's events.
        walls_s: each run's wall seconds, in run order (as many as the trace's runs).

    Returns:
        Seconds per run, at least 0; empty when the trace's runs are not as many as
        `walls_s`.
    """
    events = list(events)
    runs = sorted((e for e in events if e.get("name") == RUN_EVENT), key=lambda e: e["ts"])
    if len(runs) != len(walls_s):
        return []
    kernels = [e for e in events if _is_kernel(e)]
    result = []
    for run, wall in zip(runs, walls_s, strict=True):
        start, end = run["ts"], run["ts"] + run["dur"]
        inside = sum(float(k["dur"]) for k in kernels if start <= k["ts"] <= end) * 1e-6
        result.append(max(0.0, wall - inside))
    return result


def profile_model(
    model: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    threads: int,
    runs: int = 5,
    statistic: Callable[[list[float]], float] = statistics.median,
) -> ModelProfile:
    """Run `model` under onnxruntime's profiler: each node's kernel time and the run overhead.

    Args:
        model: the model (node names must be unique, as flcompile's are).
        feeds: its inputs.
        threads: onnxruntime's intra-op threads (inter-op 1).
        runs: timed runs, after one warm-up run.
        statistic: what to take of each node's run times, and of the runs' overheads
            (default: the median).

    Returns:
        The kernel times and the run overhead.

    Raises:
        InternalError: onnxruntime wrote no profile.
    """
    with tempfile.TemporaryDirectory(prefix="flcompile-profile-") as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "trace")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        walls = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            session.run(None, dict(feeds))
            walls.append(time.perf_counter() - start)
        path = session.end_profiling()
        if not path or not os.path.exists(path):
            raise InternalError("onnxruntime wrote no profile")
        with open(path, encoding="utf-8") as f:
            events = json.load(f)
    overheads = run_overheads(events, walls)[1:]  # the warm-up run left out
    return ModelProfile(
        parse_trace(events, statistic=statistic), statistic(overheads) if overheads else 0.0
    )
