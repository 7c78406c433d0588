"""tools/bench_runtime.py: the speedups, the CSV and the plot from a benchmark's rows (the
runs themselves need the testbed, which tests/tools/test_testbed.py covers)."""

from __future__ import annotations

import csv

import bench_runtime


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
        }

    return [row("FL", 0.4, 0.5), row("NFL", 0.6, 0.8)]


def test_the_speedup_is_nfl_time_over_fl_time_measured_and_predicted() -> None:
    rows = bench_runtime.with_speedups(_rows())
    assert rows[0]["speedup_measured"] == rows[1]["speedup_measured"] == 0.6 / 0.4
    assert rows[0]["speedup_predicted"] == 0.8 / 0.5


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
