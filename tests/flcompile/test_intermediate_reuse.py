"""Intermediate reuse end to end: the flags, the search, a compiled plan and its plan.json."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from tiny_models import nhwc_model, opset9_ir3_model

from flcompile import models
from flcompile.cli import build_parser, main, options_from
from flcompile.compile import CompileOptions, analyse, compile_model
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.intermediate import scan_orders
from flcompile.errors import UsageError
from flcompile.load import load_model
from flcompile.plan_json import resimulate
from flcompile.search import DEFAULT_INTERMEDIATE, SearchOptions, solve
from flcompile.simulate import simulate


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        ([], DEFAULT_INTERMEDIATE),
        (["--no-intermediate-reuse"], False),
        (["--intermediate-reuse"], True),
        (["--no-reuse"], False),
        (["--paper"], False),
        (["--paper", "--reuse"], DEFAULT_INTERMEDIATE),
    ],
)
def test_intermediate_reuse_flags(flags: list[str], want: bool) -> None:
    rate = [] if "--paper" in flags else ["--rate", "1.8"]
    args = build_parser().parse_args(["alexnet", *rate, *flags])
    assert options_from(args).search.intermediate is want


@pytest.mark.parametrize(
    "flags",
    [
        ["--no-reuse", "--intermediate-reuse"],
        ["--paper", "--intermediate-reuse"],
        ["--no-reuse", "--solver", "scan"],
        ["--no-intermediate-reuse", "--solver", "scan"],
    ],
)
def test_intermediate_reuse_without_reuse_is_a_usage_error(flags, tmp_path, capsys) -> None:
    rate = [] if "--paper" in flags else ["--rate", "1.8"]
    out = tmp_path / "out"
    assert main(["alexnet", *rate, *flags, "-o", str(out)]) == UsageError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2 and "intermediate reuse" in err[0].replace("-", " ")
    assert not out.exists()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """SqueezeNet at width 0.25 and 96², saved, and its analysis."""
    path = tmp_path_factory.mktemp("m") / "sq.onnx"
    onnx.save_model(models.build("squeezenet", width=0.25, size=96), str(path))
    return path, analyse(load_model(str(path)))


@pytest.mark.parametrize(("concurrency", "rate"), [(0, 0.5), (1, 3.0), (1, 0.5)])
def test_best_finds_scan_plans_and_never_gets_worse(small, concurrency: int, rate: float) -> None:
    _, analysis = small
    compute = ComputeModel(edge_concurrency=concurrency)
    link = LinkModel(rate_MBps=rate)
    searched = {"max_grid": (4, 4), "tiles": "uniform", "reuse": True}
    without = solve(analysis.space(compute, SearchOptions(**searched)), link, "best")
    space = analysis.space(compute, SearchOptions(**searched, intermediate=True))
    best, scans = solve(space, link, "best"), solve(space, link, "scan")
    assert best.predicted_s <= min(without.predicted_s, scans.predicted_s) + 1e-12
    plan = scans.fused
    assert plan is not None and plan.computed is not None and plan.solver == "scan"
    assert set(plan.schedule.cuts) == {0}
    assert plan.schedule.order in scan_orders(plan.tiling.grid).values()
    assert plan.table.edge_concurrency == 1  # its edge parts run in order
    assert simulate(plan.table, plan.schedule).finish == pytest.approx(plan.predicted_s)
    for result in (best, scans):
        assert result.lower_bound_space_s <= result.predicted_s + 1e-12
    # The least scan plan over the space is exact: the bound never exceeds it.
    assert best.lower_bound_space_s <= plan.predicted_s + 1e-12


@pytest.mark.parametrize("send_dtype", ["float32", "float16"])
def test_a_scan_plan_compiles_verifies_and_resimulates(small, tmp_path, send_dtype) -> None:
    path, _ = small
    options = CompileOptions(
        link=LinkModel(rate_MBps=1.0),
        search=SearchOptions(
            solver="scan", grid=(3, 3), reuse=True, intermediate=True, send_dtype=send_dtype
        ),
        runs=0,
        emit_stages=True,
    )
    out = tmp_path / "out"
    result = compile_model(str(path), out, options)  # verified in onnxruntime inside
    assert result.verify is not None and result.verify.passed
    plan = json.loads((out / "plan.json").read_text())
    assert plan["solver"] == "scan"
    assert plan["fused"]["reuse"] is True and plan["fused"]["intermediate_reuse"] is True
    assert resimulate(plan) == pytest.approx(plan["predicted_s"], rel=1e-12)
    paths = sorted(plan["paths"], key=lambda p: p["order"])
    assert all(p["cut_after"] is None for p in paths)
    # Later paths read what earlier ones computed, and compute less than their whole region.
    assert any(p["keeps"] for p in paths) and any(p["held"] for p in paths)
    independent = result.result.plan.costs.flops.sum(axis=1)
    edge_flops = np.array([p["edge_flops"] for p in sorted(paths, key=lambda p: p["index"])])
    assert (edge_flops <= independent + 1e-6).all() and edge_flops.sum() < independent.sum()
    assert plan["fused"]["redundancy"] < result.result.plan.costs.redundancy
    first = paths[0]
    assert [c["node"] for c in first["computes"]] == plan["fused"]["block_nodes"]
    stages = json.loads((out / "stages" / "stages.json").read_text())
    by_path = {p["index"]: p for p in plan["paths"]}
    for stage in stages["paths"]:
        assert stage["held"] == by_path[stage["path"]]["held"]
        assert stage["keeps"] == by_path[stage["path"]]["keeps"]
    device = onnx.load(str(out / "device.onnx"))
    assert {n.op_type for n in device.graph.node} <= {"Slice", "Cast"}  # it only slices


@pytest.mark.parametrize(
    ("build", "fuse_at"),
    [(opset9_ir3_model, "p"), (nhwc_model, "r2")],
    ids=["opset9-slice-attributes", "nhwc-input"],
)
def test_scan_plans_of_old_and_nhwc_models_verify(build, fuse_at: str, tmp_path) -> None:
    """Slice-1 takes attributes, and an NHWC input is sliced on axes 1 and 2 before its
    Transpose, which the edge then runs in pieces."""
    source = tmp_path / "m.onnx"
    onnx.save_model(build(), str(source))
    options = CompileOptions(
        link=LinkModel(rate_MBps=0.05),
        search=SearchOptions(
            solver="scan", grid=(2, 3), fuse_at=fuse_at, reuse=True, intermediate=True
        ),
        runs=0,
        emit_stages=True,
    )
    result = compile_model(str(source), tmp_path / "out", options)
    assert result.verify is not None and result.verify.passed
    assert result.result.plan.computed is not None
    device = onnx.load(str(tmp_path / "out" / "device.onnx"))
    assert device.opset_import[0].version == build().opset_import[0].version
    assert {n.op_type for n in device.graph.node} == {"Slice"}
