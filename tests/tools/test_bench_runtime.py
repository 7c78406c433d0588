"""tools/bench_runtime.py: the speedups, the CSV and the plot from a benchmark's rows (the
runs themselves need the testbed, which tests/tools/test_testbed.py covers)."""

from __future__ import annotations

import csv
import subprocess

import bench_runtime
import pytest


def _rows() -> list[dict]:
    def row(plan: str, measured: float, predicted: float) -> dict:
        return {
            "model": "alexnet",
            "rate_MBps": 1.8,
            "plan": plan,
            "emitted": "FL 1x3" if plan == "FL" else "NFL",
            "link_rate_MBps": 1.78,
            "link_latency_s": 0.004,
            "measured_s": measured,
            "predicted_s": predicted,
            "ratio": measured / predicted,
            "link_ratio": 1.05,
            **{f"{m}_{k}_s": 0.1 for m in bench_runtime.MARKS for k in ("measured", "predicted")},
        }

    return [row("FL", 0.4, 0.5), row("NFL", 0.6, 0.8)]


def test_the_speedup_is_nfl_time_over_fl_time_measured_and_predicted() -> None:
    rows = bench_runtime.with_speedups(_rows())
    assert rows[0]["speedup_measured"] == rows[1]["speedup_measured"] == 0.6 / 0.4
    assert rows[0]["speedup_predicted"] == 0.8 / 0.5


def test_stage_marks_put_each_term_of_the_latency_beside_its_prediction() -> None:
    plan = {
        "paths": [],
        "nfl_plan": {"device_s": 0.05, "link_s": 0.1, "edge_s": 0.02},
        "return_s": 0.005,
    }

    def frame(shift: float) -> dict:
        events = [
            {"kind": "device", "path": 0, "start": 0.0, "end": 0.01},
            {"kind": "send", "path": 0, "start": 0.01, "end": 0.01, "handed": 0.03 + shift},
            {"kind": "edge", "path": 0, "received": 0.14 + shift, "start": 0.15, "end": 0.2},
            {"kind": "answer", "path": 0, "at": 0.21},
        ]
        return {"ok": True, "events": events}

    report = {"frames": [frame(0.0), frame(0.01), frame(0.1), {"ok": False, "events": []}]}
    marks = bench_runtime.stage_marks(report, plan)
    # Measured: medians over the answered frames; predicted: the plan's own timeline.
    expected = {
        "device_done": (0.04, 0.05),
        "last_arrival": (0.15, 0.15),  # 0.14 + 0.01; 0.05 + 0.1
        "edge_done": (0.2, 0.17),  # the edge's end; the finish 0.175 less the return
    }
    for mark, (measured, predicted) in expected.items():
        assert marks[f"{mark}_measured_s"] == pytest.approx(measured)
        assert marks[f"{mark}_predicted_s"] == pytest.approx(predicted)


def test_a_model_and_rate_without_both_plans_has_no_speedup() -> None:
    (row,) = bench_runtime.with_speedups(_rows()[:1])
    assert row["speedup_measured"] is None and row["speedup_predicted"] is None


def test_the_csv_and_png_are_written(tmp_path) -> None:
    rows = bench_runtime.with_speedups(_rows())
    bench_runtime.write_csv(tmp_path / "b.csv", rows)
    bench_runtime.plot(tmp_path / "b.png", rows)
    read = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert [r["plan"] for r in read] == ["FL", "NFL"] and list(read[0]) == bench_runtime.COLUMNS
    assert float(read[1]["measured_s"]) == 0.6
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_step_is_said_and_counted_and_the_others_go_on(capsys) -> None:
    from flcompile.errors import BadInputError

    def fails() -> dict:
        raise BadInputError("flcompile run exited 1: the server went away")

    failures: list[str] = []
    assert bench_runtime._guarded(failures, "alexnet-1.8-FL", fails) is None
    assert bench_runtime._guarded(failures, "alexnet-1.8-NFL", lambda: {"ok": 1}) == {"ok": 1}
    assert failures == ["alexnet-1.8-FL"]
    assert "alexnet-1.8-FL: failed: flcompile run exited 1" in capsys.readouterr().out


def test_profiles_found_in_the_folder_are_reused_not_measured(tmp_path, monkeypatch) -> None:
    for side in ("device", "edge"):
        (tmp_path / f"alexnet-{side}.json").write_text("{}")
    ran = []
    monkeypatch.setattr(bench_runtime.testbed, "run_throttled", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(bench_runtime.subprocess, "run", lambda *a, **k: ran.append(a))
    found = bench_runtime.measured_profiles("alexnet", "alexnet", tmp_path, 19.4)
    assert found == {s: tmp_path / f"alexnet-{s}.json" for s in ("device", "edge")}
    assert ran == []
    options = bench_runtime.cost_options(found, tmp_path / "link.json", 1.7)
    assert options[options.index("--link-profile") + 1] == str(tmp_path / "link.json")
    assert options[options.index("--return-rate") + 1] == "1.7"  # answers cross the link too
    assert options[options.index("--device-profile") + 1] == str(found["device"])


def test_the_device_is_profiled_unthrottled_at_its_measured_slowdown(tmp_path, monkeypatch) -> None:
    (tmp_path / "alexnet-edge.json").write_text("{}")  # reused: only the device is measured
    ran = []

    def profile(argv, **kwargs):
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout="profile: wrote it\n", stderr="")

    monkeypatch.setattr(bench_runtime, "device_slowdown", lambda source, slowdown: 19.5)
    monkeypatch.setattr(bench_runtime.subprocess, "run", profile)
    bench_runtime.measured_profiles("alexnet", "alexnet", tmp_path, 19.4)
    (argv,) = ran
    assert argv[argv.index("--slowdown") + 1] == "19.5"
    assert argv[argv.index("-o") + 1] == str(tmp_path / "alexnet-device.json")
