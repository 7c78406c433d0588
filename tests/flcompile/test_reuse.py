"""Edge-side reuse end to end: the flags, a compiled plan's pieces, plan.json's re-simulation,
and reuse never predicting a slower plan than the independent paths on the same model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from tiny_models import conv_relu_model

from flcompile import models
from flcompile.cli import build_parser, options_from
from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import ComputeModel, LinkModel
from flcompile.plan_json import resimulate
from flcompile.search import DEFAULT_REUSE, SearchOptions


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        ([], DEFAULT_REUSE),
        (["--reuse"], True),
        (["--no-reuse"], False),
        (["--paper"], False),
        (["--paper", "--reuse"], True),
        (["--reuse", "--no-reuse"], False),  # the last flag wins
    ],
)
def test_reuse_flags(flags: list[str], want: bool) -> None:
    rate = [] if "--paper" in flags else ["--rate", "1.8"]
    args = build_parser().parse_args(["alexnet", *rate, *flags])
    assert options_from(args).search.reuse is want


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "conv_relu.onnx"
    onnx.save_model(conv_relu_model(), str(path))
    return path


@pytest.mark.parametrize("concurrency", [0, 1])
def test_reuse_plan_sends_new_pieces_and_resimulates(model_file, tmp_path, concurrency) -> None:
    options = CompileOptions(
        compute=ComputeModel(edge_concurrency=concurrency),
        link=LinkModel(rate_MBps=0.05, latency_s=1e-4),
        search=SearchOptions(grid=(2, 3), fuse_at="r", reuse=True),
        runs=0,
        emit_stages=True,
    )
    result = compile_model(str(model_file), tmp_path / "out", options)  # verified inside
    assert result.verify is not None and result.verify.passed
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["fused"]["reuse"] is True
    assert resimulate(plan) == pytest.approx(plan["predicted_s"], rel=1e-12)
    device = onnx.load(str(tmp_path / "out" / "device.onnx"))
    in_order = sorted(plan["paths"], key=lambda p: p["order"])
    sent = [s["tensor"] for p in in_order for s in p["sends"]]
    assert [o.name for o in device.graph.output] == sent
    # At most two pieces per tensor, each a non-empty rectangle.
    for path in plan["paths"]:
        per_tensor = [piece["of"] for piece in path["sends"]]
        assert all(per_tensor.count(t) <= 2 for t in per_tensor)
        for piece in path["sends"]:
            (h0, h1), (w0, w1) = piece["region"]["h"], piece["region"]["w"]
            assert 0 <= h0 < h1 and 0 <= w0 < w1
    stages = json.loads((tmp_path / "out" / "stages" / "stages.json").read_text())
    assert {e["path"]: e["held"] for e in stages["paths"]} == {
        p["index"]: p["held"] for p in plan["paths"]
    }


def test_reuse_sends_fewer_bytes_than_independent_paths(tmp_path) -> None:
    """At a raw-input cut on every path, reuse sends the input once; without it, the halos
    go several times. Both plans are verified in onnxruntime."""
    source = tmp_path / "squeezenet.onnx"
    onnx.save_model(models.build("squeezenet", width=0.25, size=64), str(source))
    sent = {}
    for reuse in (False, True):
        options = CompileOptions(
            link=LinkModel(rate_MBps=100.0),  # a fast link: raw tiles are the best cuts
            search=SearchOptions(grid=(3, 3), reuse=reuse),
            runs=0,
        )
        result = compile_model(str(source), tmp_path / f"out{reuse}", options)
        assert result.verify is not None and result.verify.passed
        sent[reuse] = (
            sum(s["bytes"] for p in result.plan["paths"] for s in p["sends"]),
            result.plan["predicted_s"],
        )
    assert sent[True][0] < sent[False][0]
    assert sent[True][1] <= sent[False][1] * (1 + 1e-9)
    assert np.isfinite(sent[True][1])
