"""plan.json: schema 1's keys, and predicted_s re-simulated from paths[] alone."""

from __future__ import annotations

import json

import pytest
from tiny_models import conv_relu_model

from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import ComputeModel, LinkModel
from flcompile.plan_json import resimulate
from flcompile.search import SearchOptions

SCHEMA_KEYS = {
    "schema", "model", "link", "cost", "solver", "search", "fused", "paths",
    "post_fuse_edge_s", "predicted_s", "lower_bound_s", "lower_bound_space_s", "baselines",
    "verify", "measured",
}  # fmt: skip
PATH_KEYS = {
    "index", "order", "tile", "cut_after", "sends", "device_s", "link_s", "edge_s",
    "device_start", "device_end", "link_start", "link_end", "edge_end",
}  # fmt: skip


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import onnx

    path = tmp_path_factory.mktemp("m") / "conv_relu.onnx"
    onnx.save_model(conv_relu_model(), str(path))
    return path


@pytest.mark.parametrize("concurrency", [0, 1, 2])
def test_schema_and_resimulation(model_file, tmp_path, concurrency: int) -> None:
    options = CompileOptions(
        compute=ComputeModel(edge_concurrency=concurrency, overhead_dev_s=1e-5),
        link=LinkModel(rate_MBps=0.05, latency_s=1e-4),
        search=SearchOptions(grid=(2, 3), fuse_at="r"),
        runs=0,
    )
    compile_model(str(model_file), tmp_path / "out", options)
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert set(plan) >= SCHEMA_KEYS
    assert plan["schema"] == 1 and plan["link"]["bytes_per_MB"] == 1e6
    assert plan["fused"]["grid"] == [2, 3] and len(plan["paths"]) == 6
    for path in plan["paths"]:
        assert set(path) >= PATH_KEYS
    assert sorted(p["order"] for p in plan["paths"]) == list(range(6))
    assert resimulate(plan) == pytest.approx(plan["predicted_s"], rel=1e-12)
    assert plan["lower_bound_s"] <= plan["predicted_s"] + 1e-12
    assert plan["lower_bound_space_s"] <= plan["predicted_s"] + 1e-12
    # Tampering with a path's numbers must change the re-simulated latency.
    slowest = max(plan["paths"], key=lambda p: p["edge_end"])
    slowest["edge_s"] += 1.0
    assert resimulate(plan) > plan["predicted_s"]


def test_plan_without_fused_layers(model_file, tmp_path) -> None:
    options = CompileOptions(
        link=LinkModel(rate_MBps=1.0), search=SearchOptions(solver="nfl"), runs=0
    )
    result = compile_model(str(model_file), tmp_path / "out", options)
    plan = result.plan
    assert plan["fused"] is None and plan["paths"] == []
    assert plan["predicted_s"] == pytest.approx(plan["baselines"]["nfl_s"])
    assert resimulate(plan) == pytest.approx(plan["predicted_s"])
    assert all(s.startswith("fl_cut_") for s in plan["nfl_plan"]["sends"])
