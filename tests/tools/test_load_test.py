"""tools/load_test.py: devices at once against a live server (slow: each starts a server)."""

from __future__ import annotations

import json

import load_test
import pytest

pytest.importorskip("pytriton", reason="the serve extra is not installed")
pytest.importorskip("tritonclient.grpc", reason="the device extra is not installed")

SMALL = ["--width", "0.25", "--size", "96"]


@pytest.mark.slow
def test_four_devices_200_frames_each_all_exact_and_memory_flat(tmp_path) -> None:
    out = tmp_path / "load"
    assert load_test.main([*SMALL, "--devices", "4", "--frames", "200", "-o", str(out)]) == 0
    result = json.loads((out / "load_test.json").read_text())
    assert result["frames"] == result["frames_answered"] == 800
    assert result["wrong_outputs"] == 0 and not result["leftover_processes"]
    assert result["rss_growth"] < load_test.RSS_GROWTH_TARGET
    assert result["throughput_fps"] > 0 and result["p99_s"] >= result["median_s"] > 0
    assert result["targets_missed"] == []


@pytest.mark.slow
def test_a_server_restart_costs_errors_never_wrong_outputs(tmp_path) -> None:
    out = tmp_path / "restart"
    argv = [*SMALL, "--devices", "2", "--frames", "100", "--warmup", "5", "--restart-at", "20"]
    assert load_test.main([*argv, "-o", str(out)]) == 0
    result = json.loads((out / "load_test.json").read_text())
    assert result["restarts"] == 1
    assert result["frames_failed"] > 0  # the restart cost errors...
    assert result["answered_after_restart"] > 0  # ...the devices came back...
    assert result["wrong_outputs"] == 0  # ...and no answer was wrong
