"""Tests for flcompile.timing: medians of onnxruntime runs of the split and the original."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from flcompile import timing
from flcompile.errors import UsageError
from flcompile.timing import TimingOptions, default_threads, time_model, time_split
from flcompile.verify import make_feeds


def _model(nodes, x: str, y: str, conv: bool) -> onnx.ModelProto:
    w = np.random.default_rng(1).standard_normal((4, 3, 1, 1)).astype(np.float32)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4 if not conv else 3, 8, 8])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4, 8, 8])],
        [onnx.numpy_helper.from_array(w, "W")] if conv else [],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def original_model() -> onnx.ModelProto:
    # Graph: X -> Conv -> c -> Relu -> Y
    conv = helper.make_node("Conv", ["X", "W"], ["c"])
    return _model([conv, helper.make_node("Relu", ["c"], ["Y"])], "X", "Y", conv=True)


def device_model() -> onnx.ModelProto:
    # Graph: X -> Conv -> fl_cut_c
    return _model([helper.make_node("Conv", ["X", "W"], ["fl_cut_c"])], "X", "fl_cut_c", True)


def edge_model() -> onnx.ModelProto:
    # Graph: fl_cut_c -> Relu -> Y
    return _model([helper.make_node("Relu", ["fl_cut_c"], ["Y"])], "fl_cut_c", "Y", conv=False)


def test_time_model_reports_requested_runs():
    feeds = make_feeds(original_model())
    result = time_model(original_model(), feeds, threads=1, options=TimingOptions(runs=4, warmup=1))
    assert result.runs == 4 and len(result.all_s) == 4
    assert result.threads == 1
    assert result.median_s > 0
    assert min(result.all_s) <= result.median_s <= max(result.all_s)


def test_time_model_from_path(tmp_path, monkeypatch):
    # A clock that makes the three timed runs last 0.5, 0.25 and 1 s: the median is 0.5.
    ticks = iter([0.0, 0.5, 1.0, 1.25, 2.0, 3.0])
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    path = tmp_path / "m.onnx"
    onnx.save_model(original_model(), path)
    options = TimingOptions(runs=3, warmup=1)
    result = time_model(path, make_feeds(original_model()), threads=None, options=options)
    assert result.threads is None
    assert result.runs == 3 and result.all_s == (0.5, 0.25, 1.0)
    assert result.median_s == 0.5
    assert next(ticks, None) is None  # each timed run read the clock twice, warm-up never


def test_time_split_measures_all_three():
    feeds = make_feeds(original_model())
    measured = time_split(
        original_model(),
        device_model(),
        edge_model(),
        feeds,
        options=TimingOptions(runs=3, warmup=1, edge_threads=2),
    )
    assert measured.device_s > 0 and measured.edge_s > 0 and measured.original_s > 0
    assert measured.original_edge_threads_s > 0
    assert measured.to_json() == {
        "device_s": measured.device_s,
        "edge_s": measured.edge_s,
        "original_s": measured.original_s,
        "original_edge_threads_s": measured.original_edge_threads_s,
        "edge_over_original": measured.edge_s / measured.original_edge_threads_s,
        "runs": 3,
        "device_threads": 1,
        "edge_threads": 2,
        "default_threads": default_threads(),
        "requested_threads": {"device": 1, "edge": 2},
    }


def split_times(**kwargs) -> timing.MeasuredTimes:
    """time_split of the Conv -> Relu split above."""
    original = original_model()
    options = TimingOptions(**kwargs)
    return time_split(original, device_model(), edge_model(), make_feeds(original), options=options)


# Fixed "timed runs" per model and thread count: (label, intra-op threads) -> seconds.
FAKE_RUNS = {
    ("device", 1): (0.002, 0.001, 0.003),
    ("device", 2): (0.002, 0.001, 0.003),
    ("edge", 2): (0.030, 0.010, 0.020),
    ("original", 2): (0.008, 0.016, 0.012),
    ("original", 1): (0.050, 0.040, 0.060),
}


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Replace the timed runs with FAKE_RUNS; returns the (label, threads) timed, in order."""
    timed: list[tuple[str, int]] = []

    def fake_time_session(session, feeds, *, runs, warmup, label, progress):
        key = (label.split()[0], session.get_session_options().intra_op_num_threads)
        timed.append(key)
        return FAKE_RUNS[key][:runs]

    monkeypatch.setattr(timing, "_time_session", fake_time_session)
    return timed


def test_the_ratio_is_edge_over_original_at_the_edge_threads(fake_clock):
    measured = split_times(device_threads=1, edge_threads=2, runs=3)
    assert measured.edge_s == pytest.approx(0.020)  # the medians of FAKE_RUNS
    assert measured.original_edge_threads_s == pytest.approx(0.012)
    assert measured.original_s == pytest.approx(0.050)
    assert measured.edge_over_original == pytest.approx(0.020 / 0.012)
    assert measured.to_json()["edge_over_original"] == measured.edge_over_original


def test_the_original_is_timed_at_both_thread_counts(fake_clock):
    split_times(device_threads=1, edge_threads=2, runs=3)
    assert sorted(fake_clock) == [("device", 1), ("edge", 2), ("original", 1), ("original", 2)]


def test_equal_thread_settings_time_the_original_once(fake_clock):
    measured = split_times(device_threads=2, edge_threads=2, runs=3)
    assert [label for label, _ in fake_clock].count("original") == 1
    assert measured.original_s == measured.original_edge_threads_s


def test_default_threads_is_the_pool_onnxruntime_starts():
    # An intra-op pool of N threads starts N - 1 of them; the caller's thread is the N-th.
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        pytest.skip("counting a process's threads needs Linux's /proc")
    model = original_model().SerializeToString()
    before = len(list(tasks.iterdir()))
    session = ort.InferenceSession(model, ort.SessionOptions(), providers=["CPUExecutionProvider"])
    started = len(list(tasks.iterdir())) - before
    del session
    assert default_threads() == started + 1


def test_default_threads_are_reported_as_a_number():
    measured = split_times(edge_threads=None, runs=1, warmup=0)
    assert measured.to_json()["edge_threads"] == default_threads()
    assert measured.to_json()["requested_threads"] == {"device": 1, "edge": None}


def test_time_model_rejects_zero_runs():
    with pytest.raises(UsageError, match="--runs"):
        time_model(original_model(), make_feeds(original_model()), options=TimingOptions(runs=0))
