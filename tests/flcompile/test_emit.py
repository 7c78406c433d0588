"""The emitted models: shared weights stay shared, every node says where it runs, and
stages/stages.json alone is enough to run the plan stage by stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from tiny_models import SHARED_WEIGHT_SHAPE, shared_weight_model

from flcompile import models
from flcompile.compile import CompileOptions, CompileResult, compile_model
from flcompile.costs import LinkModel
from flcompile.model_io import weight_bytes
from flcompile.search import SearchOptions

GRID = (2, 2)


def run(model: onnx.ModelProto | Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of `model` on `feeds` (one thread, no graph optimizations)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name for i in session.get_inputs()}
    values = session.run(names, {k: v for k, v in feeds.items() if k in wanted})
    return dict(zip(names, values, strict=True))


def random_feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    feeds = {}
    for value in model.graph.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def compile_shared(tmp_path: Path) -> tuple[Path, Path, CompileResult]:
    source = tmp_path / "shared.onnx"
    onnx.save_model(shared_weight_model(), str(source))
    options = CompileOptions(
        link=LinkModel(rate_MBps=0.01),
        search=SearchOptions(grid=GRID, fuse_at="r2"),
        runs=0,
        emit_tiled=True,
        emit_stages=True,
    )
    out = tmp_path / "out"
    return source, out, compile_model(str(source), out, options)


def float_initializers(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The weights: every initializer but the int64 Slice bounds the tiling adds."""
    return [t for t in model.graph.initializer if t.data_type != TensorProto.INT64]


def test_weights_shared_through_identity_stay_one_initializer(tmp_path: Path) -> None:
    source, out, result = compile_shared(tmp_path)
    original = onnx.load(str(source))
    assert result.verify is not None and result.verify.passed
    cuts = [p["cut_after"] for p in result.plan["paths"]]
    assert "relu2" in cuts and "conv2" in cuts, "the device must run the shared convolutions"
    for name in ("device.onnx", "edge.onnx", "tiled.onnx"):
        model = onnx.load(str(out / name))
        shared = [t for t in model.graph.initializer if tuple(t.dims) == SHARED_WEIGHT_SHAPE]
        assert len(shared) == 1, f"{name}: {[t.name for t in shared]}"
        assert shared[0].name == "ws"
        weights = float_initializers(model)
        assert len(weights) <= len(original.graph.initializer), name
        assert weight_bytes(model) - weight_bytes(original) < 4096, name  # only Slice bounds
        assert not [n for n in model.graph.node if n.op_type == "Identity"], name
    feeds = random_feeds(original)
    want = run(original, feeds)
    sent = run(out / "device.onnx", feeds)
    assert_close(run(out / "edge.onnx", sent), want)
    assert_close(run(out / "tiled.onnx", feeds), want)


def placements(model: onnx.ModelProto) -> dict[str, tuple[str, str]]:
    """node name -> (fl.placement, fl.path); fails on a node without both."""
    found = {}
    for node in model.graph.node:
        props = {p.key: p.value for p in node.metadata_props}
        assert set(props) == {"fl.placement", "fl.path"}, node.name
        found[node.name] = (props["fl.placement"], props["fl.path"])
    return found


def test_every_emitted_node_carries_its_placement_and_path(tmp_path: Path) -> None:
    _, out, _ = compile_shared(tmp_path)
    paths = {str(p) for p in range(GRID[0] * GRID[1])}
    device = placements(onnx.load(str(out / "device.onnx")))
    edge = placements(onnx.load(str(out / "edge.onnx")))
    tiled = placements(onnx.load(str(out / "tiled.onnx")))
    assert {where for where, _ in device.values()} == {"device"}
    assert {where for where, _ in edge.values()} == {"edge"}
    assert {path for _, path in device.values()} == paths
    assert {path for _, path in edge.values()} == {"", "0"}, "path 0 ends on the edge"
    assert tiled == device | edge
    for name in ("device.onnx", "edge.onnx"):
        summary = {p.key: p.value for p in onnx.load(str(out / name)).metadata_props}
        assert summary["fl.plan"] == "fused" and summary["fl.fused_tensor"] == "r2"
    index = result_stages(out)
    for entry in index["paths"]:
        stage = placements(onnx.load(str(out / "stages" / entry["device"])))
        assert set(stage.values()) == {("device", str(entry["path"]))}
        if entry["edge"]:
            stage = placements(onnx.load(str(out / "stages" / entry["edge"])))
            assert set(stage.values()) == {("edge", str(entry["path"]))}
    fuse = placements(onnx.load(str(out / "stages" / index["fuse"]["model"])))
    assert set(fuse.values()) == {("edge", "")}


def test_single_cut_models_carry_placements(tmp_path: Path) -> None:
    source = tmp_path / "shared.onnx"
    onnx.save_model(shared_weight_model(), str(source))
    options = CompileOptions(search=SearchOptions(solver="nfl"), runs=0, verify=False)
    compile_model(str(source), tmp_path / "out", options)
    device = placements(onnx.load(str(tmp_path / "out" / "device.onnx")))
    edge = placements(onnx.load(str(tmp_path / "out" / "edge.onnx")))
    assert set(device.values()) == {("device", "")}
    assert set(edge.values()) == {("edge", "")}


def result_stages(out: Path) -> dict:
    return json.loads((out / "stages" / "stages.json").read_text())


def run_stages(stages: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a plan from stages/stages.json alone, as a pipelined server would."""
    index = json.loads((stages / "stages.json").read_text())
    assert index["schema"] == 1
    by_path = {entry["path"]: entry for entry in index["paths"]}
    assert sorted(by_path) == sorted(index["run_order"])
    fused = {}
    for order, p in enumerate(index["run_order"]):
        entry = by_path[p]
        assert entry["order"] == order
        sent = run(stages / entry["device"], {name: feeds[name] for name in index["inputs"]})
        assert list(sent) == entry["sends"]
        if entry["edge"] is None:
            fused.update(sent)
        else:
            fused.update(run(stages / entry["edge"], sent))
        assert entry["fused_tile"] in fused
    fuse = index["fuse"]
    assert sorted(fuse["inputs"]) == sorted(fused)
    outputs = run(stages / fuse["model"], fused)
    assert list(outputs) == fuse["outputs"]
    return outputs


def test_stages_json_alone_reproduces_the_model(tmp_path: Path) -> None:
    source, out, _ = compile_shared(tmp_path)
    original = onnx.load(str(source))
    index = result_stages(out)
    assert any(e["edge"] is None for e in index["paths"]), "a path wholly on the device"
    assert any(e["edge"] is not None for e in index["paths"]), "a path ending on the edge"
    feeds = random_feeds(original)
    assert_close(run_stages(out / "stages", feeds), run(original, feeds))


@pytest.mark.parametrize(("rate", "tiles"), [(0.1, None), (1.8, None), (1.8, "free")])
def test_stages_json_of_a_zoo_model_reproduces_it(rate: float, tiles, tmp_path: Path) -> None:
    source = tmp_path / "squeezenet.onnx"
    onnx.save_model(models.build("squeezenet", width=0.25, size=64), str(source))
    options = CompileOptions(
        link=LinkModel(rate_MBps=rate),
        search=SearchOptions(grid=GRID, tiles=tiles),
        runs=0,
        verify=False,
        emit_stages=True,
    )
    result = compile_model(str(source), tmp_path / "out", options)
    index = result_stages(tmp_path / "out")
    in_order = sorted(result.plan["paths"], key=lambda p: p["order"])
    assert index["run_order"] == [p["index"] for p in in_order]
    rows = {tuple(p["tile"]["h"]) for p in in_order}
    assert (len({b - a for a, b in rows}) > 1) == (tiles == "free")  # here: unequal rows
    original = onnx.load(str(source))
    feeds = random_feeds(original)
    assert_close(run_stages(tmp_path / "out" / "stages", feeds), run(original, feeds))


def test_real_export_keeps_one_copy_of_each_weight(real_export, tmp_path: Path) -> None:
    """googlenet's legacy export feeds 13 deduplicated initializers to 40 convolutions through
    Identity nodes; no emitted model may hold more weights than the original."""
    source = real_export("googlenet.legacy.onnx")
    original = onnx.load(str(source))
    names = {t.name for t in original.graph.initializer}
    options = CompileOptions(search=SearchOptions(grid=GRID), runs=0, emit_tiled=True)
    result = compile_model(str(source), tmp_path / "out", options)
    assert result.verify is not None and result.verify.passed
    for name in ("device.onnx", "edge.onnx", "tiled.onnx"):
        model = onnx.load(str(tmp_path / "out" / name))
        assert weight_bytes(model) <= 1.05 * weight_bytes(original), name
        copies = [t.name for t in float_initializers(model) if t.name not in names]
        assert not copies, f"{name} holds weights the original does not: {copies[:3]}"
