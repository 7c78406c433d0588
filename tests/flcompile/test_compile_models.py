"""End to end on real exports and zoo models: edge(device(x)) equals the original, F too.

For every real export (tools/export_fixtures.py) and zoo model (width 0.25), both a fixed 2×2 grid
and the default search must give models that verify in onnxruntime (rtol = atol = 1e-5, as
docs/design.md §7), a device.onnx and edge.onnx whose every node is annotated, and no copied
weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from export_fixtures import EXPORTS
from tiny_models import nhwc_model, opset9_ir3_model

from flcompile import models
from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import LinkModel
from flcompile.plan_json import resimulate
from flcompile.search import SearchOptions

FIXTURE_FILES = tuple(e.file_name for e in EXPORTS)  # what tools/export_fixtures.py writes


def initializer_bytes(path: Path) -> int:
    model = onnx.load(str(path))
    return sum(t.ByteSize() for t in model.graph.initializer)


def check_outputs(source: Path, out: Path, result, *, weight_growth: float | None = 1.05) -> None:
    plan = json.loads((out / "plan.json").read_text())
    assert plan["verify"]["passed"] is True
    compared = {c["name"] for c in plan["verify"]["compared"]}
    original = onnx.load(str(source), load_external_data=False)
    assert {o.name for o in original.graph.output} <= compared
    if plan["fused"] is not None:
        assert plan["fused"]["tensor"] in compared, "the fused tensor must be compared too"
    assert not (out / "tiled.onnx").exists(), "tiled.onnx is written only with --emit-tiled"
    device = onnx.load(str(out / "device.onnx"))
    edge = onnx.load(str(out / "edge.onnx"))
    for model, where in ((device, "device"), (edge, "edge")):
        for node in model.graph.node:
            props = {p.key: p.value for p in node.metadata_props}
            assert props.get("fl.placement") == where, node.name
            assert "fl.path" in props, node.name
        assert any(p.key == "fl.plan" for p in model.metadata_props)
    if weight_growth is not None:  # tiny models: the per-tile Slice bounds outweigh the weights
        for name in ("device.onnx", "edge.onnx"):
            assert initializer_bytes(out / name) <= weight_growth * initializer_bytes(source)
    assert resimulate(plan) == pytest.approx(plan["predicted_s"], rel=1e-12)
    assert plan["predicted_s"] <= plan["baselines"]["nfl_s"] * (1 + 1e-12) or plan["notes"]
    assert [o.name for o in device.graph.output] == [i.name for i in edge.graph.input]
    assert [o.name for o in edge.graph.output] == [o.name for o in original.graph.output]
    assert result.verify is not None and result.verify.passed


def compile_to(source: Path, out: Path, grid: tuple[int, int] | None) -> None:
    options = CompileOptions(link=LinkModel(rate_MBps=1.8), search=SearchOptions(grid=grid), runs=0)
    result = compile_model(str(source), out, options)
    check_outputs(source, out, result)
    if grid is not None:
        assert result.plan["fused"]["grid"] == list(grid)
        assert len(result.plan["paths"]) == grid[0] * grid[1]


@pytest.mark.parametrize("grid", [(2, 2), None], ids=["2x2", "default"])
@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_real_exports(name: str, grid, real_export, tmp_path: Path) -> None:
    compile_to(real_export(name), tmp_path / "out", grid)


#: Zoo models whose default search is the longest (12 to 15 s each): their default compile
#: runs in the slow step, their 2x2 compile in the default run.
SLOW_DEFAULT = ("mobilenet_v2", "yolov2")


def _zoo_cases() -> list:
    return [
        pytest.param(
            name,
            grid,
            id=f"{name}-{label}",
            marks=[pytest.mark.slow] if grid is None and name in SLOW_DEFAULT else [],
        )
        for name in models.NAMES
        for grid, label in (((2, 2), "2x2"), (None, "default"))
    ]


@pytest.mark.parametrize(("name", "grid"), _zoo_cases())
def test_zoo_models(name: str, grid, small_zoo: dict[str, Path], tmp_path: Path) -> None:
    compile_to(small_zoo[name], tmp_path / "out", grid)


@pytest.mark.parametrize("fuse_at", ["nchw", "r1", "r2"])
def test_nhwc_input_tiles_through_its_transpose(fuse_at: str, tmp_path: Path) -> None:
    source = tmp_path / "nhwc.onnx"
    onnx.save_model(nhwc_model(), str(source))
    options = CompileOptions(
        link=LinkModel(rate_MBps=0.05),
        search=SearchOptions(grid=(2, 3), fuse_at=fuse_at),
        runs=0,
    )
    result = compile_model(str(source), tmp_path / "out", options)
    check_outputs(source, tmp_path / "out", result, weight_growth=None)
    device = onnx.load(str(tmp_path / "out" / "device.onnx"))
    slices = [n for n in device.graph.node if n.op_type == "Slice" and n.input[0] == "image"]
    assert len(slices) == 6
    axes = [
        onnx.numpy_helper.to_array(i).tolist()
        for i in device.graph.initializer
        if i.name.endswith("/slice/axes")
    ]
    assert axes == [[1, 2]] * 6


@pytest.mark.parametrize("grid", [(2, 2), None], ids=["2x2", "default"])
def test_old_opset9_ir3_export(grid, tmp_path: Path) -> None:
    source = tmp_path / "old.onnx"
    onnx.save_model(opset9_ir3_model(), str(source))
    options = CompileOptions(
        link=LinkModel(rate_MBps=0.01), search=SearchOptions(grid=grid, fuse_at="p"), runs=0
    )
    result = compile_model(str(source), tmp_path / "out", options)
    check_outputs(source, tmp_path / "out", result, weight_growth=None)
    device = onnx.load(str(tmp_path / "out" / "device.onnx"))
    assert device.opset_import[0].version == 9 and device.ir_version >= 4
