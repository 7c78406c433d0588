"""tools/send_dtype_gain.py and sweep.py --send-dtype on a tiny case (small zoo variants)."""

from __future__ import annotations

import csv

import pytest
import send_dtype_gain
import sweep

TINY = ["--width", "0.25", "--size", "64"]


def _rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def gained(tmp_path_factory):
    out = tmp_path_factory.mktemp("gain")
    argv = ["--models", "squeezenet", "--rates", "1.1,2.5", "--accuracy-models", "squeezenet"]
    assert send_dtype_gain.main([*argv, "--accuracy-inputs", "2", *TINY, "-o", str(out)]) == 0
    return out


def test_float16_never_loses_to_float32_and_nfl_halves(gained):
    rows = _rows(gained / "send_dtype.csv")
    assert [(r["model"], float(r["rate_MBps"])) for r in rows] == [
        ("squeezenet", 1.1),
        ("squeezenet", 2.5),
    ]
    for r in rows:
        plan32, plan16 = float(r["plan32_s"]), float(r["plan16_s"])
        nfl32, nfl16 = float(r["nfl32_s"]), float(r["nfl16_s"])
        assert plan16 <= nfl16 < nfl32 and plan32 <= nfl32
        assert 1.0 <= float(r["gain"]) <= 2.0 and 0.0 < float(r["link_share"]) <= 1.0
        assert float(r["gain"]) == pytest.approx(plan32 / plan16)


def test_summary_reports_the_float16_plans_accuracy(gained):
    summary = (gained / "summary.md").read_text()
    assert "fp32/fp16 plan" in summary and "vs NFL fp16" in summary
    line = next(x for x in summary.splitlines() if x.startswith("| squeezenet |") and "2/2" in x)
    max_rel = float(line.split("|")[5])
    assert 0.0 < max_rel < 2**-8  # float16 rounding, within verification's tolerance


def test_sweep_costs_every_plan_with_the_send_dtype(tmp_path):
    argv = ["--models", "squeezenet", "--rates", "1.8", "--max-grid", "2x2", *TINY]
    nfl = {}
    for dtype in ("float32", "float16"):
        out = tmp_path / dtype
        assert sweep.main([*argv, "--send-dtype", dtype, "-o", str(out)]) == 0
        rows = _rows(out / "sweep.csv")
        nfl[dtype] = float(next(r for r in rows if r["solver"] == "nfl")["predicted_s"])
        assert f"{dtype} sends" in (out / "summary.md").read_text()
    assert nfl["float16"] < nfl["float32"]
