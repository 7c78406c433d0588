"""`--send-dtype float16`: casts in every emitted model, half the bytes, a float16 tolerance.

The float16 plans are compiled through the CLI and run in onnxruntime here: the outputs must
stay within the documented tolerance (docs/design.md §7) and keep their argmax, yet differ
from the original (the sends really are rounded).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
from test_bad_input import flcompile_cli
from tiny_models import conv_relu_model

import flcompile.verify
from flcompile import models
from flcompile.cli import main
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.untiled import baselines, model_costs
from flcompile.emit import emit_single_cut
from flcompile.load import infer_shapes
from flcompile.models.layers import OnnxBuilder
from flcompile.send_accuracy import FLOAT16_SEND_TOLERANCE
from flcompile.verify import compare, make_feeds

COMMON = ["--rate", "1.8", "--runs", "0", "-q"]


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SqueezeNet at width 0.25 and 64²."""
    path = tmp_path_factory.mktemp("send_dtype") / "sq.onnx"
    onnx.save_model(models.build("squeezenet", width=0.25, size=64), str(path))
    return path


@pytest.fixture(scope="module")
def fused16(squeezenet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its 2x2 plan with float16 sends, stages and 3 verification inputs."""
    out = tmp_path_factory.mktemp("fused16") / "out"
    argv = [str(squeezenet), "-o", str(out), *COMMON, "--grid", "2x2", "--emit-stages"]
    assert main([*argv, "--send-dtype", "float16", "--verify-inputs", "3"]) == 0
    return out


def _session(path: Path | bytes) -> ort.InferenceSession:
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, feeds: dict) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    wanted = {i.name: feeds[i.name] for i in session.get_inputs()}
    return dict(zip(names, session.run(names, wanted), strict=True))


def _metadata(node: onnx.NodeProto) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _assert_float16_close(original: Path, device: Path, edge: Path, seeds: range) -> None:
    """edge(device(x)) within the float16 tolerance of the original, argmax kept, not exact."""
    o, d, e = _session(original), _session(device), _session(edge)
    errors = []
    for seed in seeds:
        feeds = make_feeds(str(original), seed=seed)
        want = _run(o, feeds)
        got = _run(e, _run(d, feeds))
        for name, value in want.items():
            check = compare(
                name, got[name], value, rtol=FLOAT16_SEND_TOLERANCE, atol=FLOAT16_SEND_TOLERANCE
            )
            assert check.passed, (seed, name, check)
            errors.append(check.max_abs_err)
            flat_got, flat_want = got[name].reshape(1, -1), value.reshape(1, -1)
            assert np.array_equal(flat_got.argmax(axis=1), flat_want.argmax(axis=1))
    assert max(errors) > 0  # the sends were rounded


def test_fused_plan_casts_every_send_and_casts_it_back(squeezenet: Path, fused16: Path) -> None:
    device = onnx.load(str(fused16 / "device.onnx"))
    edge = onnx.load(str(fused16 / "edge.onnx"))
    plan = json.loads((fused16 / "plan.json").read_text())
    sent = {s["tensor"]: p["index"] for p in plan["paths"] for s in p["sends"]}
    assert {o.name for o in device.graph.output} == set(sent)
    assert {o.type.tensor_type.elem_type for o in device.graph.output} == {onnx.TensorProto.FLOAT16}
    assert {i.name for i in edge.graph.input} == set(sent)
    assert {i.type.tensor_type.elem_type for i in edge.graph.input} == {onnx.TensorProto.FLOAT16}
    for model, to, where in ((device, "float16", "device"), (edge, "float32", "edge")):
        casts = {n.name: n for n in model.graph.node if n.op_type == "Cast"}
        assert set(casts) == {f"{name}/to_{to}" for name in sent}
        for name, p in sent.items():
            meta = _metadata(casts[f"{name}/to_{to}"])
            assert meta == {"fl.placement": where, "fl.path": str(p)}
        assert {p.key: p.value for p in model.metadata_props}["fl.send_dtype"] == "float16"
    _assert_float16_close(squeezenet, fused16 / "device.onnx", fused16 / "edge.onnx", range(4))


def test_plan_json_counts_half_the_bytes_and_both_nfl(fused16: Path) -> None:
    plan = json.loads((fused16 / "plan.json").read_text())
    assert plan["link"]["send_dtype"] == "float16"
    for path in plan["paths"]:
        for send in path["sends"]:
            assert send["bytes"] == 2 * int(np.prod(send["shape"]))  # float16: 2 bytes each
        nbytes = sum(s["bytes"] for s in path["sends"])
        assert path["link_s"] == pytest.approx(nbytes / 1.8e6)
    base = plan["baselines"]
    assert base["nfl_float32_s"] > base["nfl_s"] and base["nfl_float32_cut"]
    verify = plan["verify"]
    assert verify["passed"] and verify["inputs"] == 3
    assert verify["argmax_unchanged"] == [3, 3]
    assert verify["rtol"] == verify["atol"] == FLOAT16_SEND_TOLERANCE
    assert 0 < verify["max_rel_err"] < FLOAT16_SEND_TOLERANCE
    fused = next(c for c in verify["compared"] if c["name"] == plan["fused"]["tensor"])
    assert fused["max_abs_err"] == 0.0  # F comes from the tiled model, which sends nothing


def test_stage_models_send_float16_and_say_so(squeezenet: Path, fused16: Path) -> None:
    stages = json.loads((fused16 / "stages" / "stages.json").read_text())
    assert stages["send_dtype"] == "float16"
    feeds = make_feeds(str(squeezenet), seed=5)
    tiles: dict[str, np.ndarray] = {}
    received: dict[str, np.ndarray] = {}  # the edge keeps what it was sent (edge-side reuse)
    for path in stages["paths"]:
        assert path["send_dtypes"] == ["float16"] * len(path["sends"])
        sent = _run(_session(fused16 / "stages" / path["device"]), feeds)
        assert {v.dtype for v in sent.values()} == {np.dtype(np.float16)}
        received.update(sent)
        if path["edge"] is None:
            tiles.update(sent)
        else:
            tiles.update(_run(_session(fused16 / "stages" / path["edge"]), received))
    got = _run(_session(fused16 / "stages" / stages["fuse"]["model"]), tiles)
    whole = _run(_session(fused16 / "edge.onnx"), _run(_session(fused16 / "device.onnx"), feeds))
    for name, value in whole.items():
        np.testing.assert_array_equal(got[name], value)  # the same casts, stage by stage


def test_a_plan_without_fused_layers_casts_its_cut_too(squeezenet: Path, tmp_path: Path) -> None:
    out = tmp_path / "nfl"
    argv = [str(squeezenet), "-o", str(out), *COMMON, "--solver", "nfl", "--send-dtype", "float16"]
    assert main(argv) == 0
    device = onnx.load(str(out / "device.onnx"))
    plan = json.loads((out / "plan.json").read_text())
    (sent,) = plan["nfl_plan"]["sends"]
    assert [o.name for o in device.graph.output] == [sent]
    assert device.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert [n.name for n in device.graph.node if n.op_type == "Cast"] == [f"{sent}/to_float16"]
    base = plan["baselines"]
    assert plan["predicted_s"] == base["nfl_s"] < base["nfl_float32_s"]
    _assert_float16_close(squeezenet, out / "device.onnx", out / "edge.onnx", range(2))


def test_local_only_sends_nothing_so_casts_nothing() -> None:
    model = conv_relu_model()
    costs = model_costs(gs.import_onnx(model), "float16")
    local = baselines(costs, ComputeModel(), LinkModel(1.0)).local
    emitted = emit_single_cut(model, local, costs.nodes, {}, "float16")
    assert emitted.cast_sends == {}
    assert not [n for n in emitted.device.graph.node if n.op_type == "Cast"]


def test_float32_sends_cast_nothing(squeezenet: Path, tmp_path: Path) -> None:
    out = tmp_path / "f32"
    assert main([str(squeezenet), "-o", str(out), *COMMON, "--grid", "2x2"]) == 0
    for name in ("device.onnx", "edge.onnx"):
        assert not [n for n in onnx.load(str(out / name)).graph.node if n.op_type == "Cast"]
    plan = json.loads((out / "plan.json").read_text())
    assert "send_dtype" not in plan["link"] and "nfl_float32_s" not in plan["baselines"]
    assert plan["verify"]["rtol"] == 1e-5 and plan["verify"]["inputs"] == 1


def overflowing_model() -> onnx.ModelProto:
    """Graph: x[1,4,16,16] -> Conv 1x1 (2e5·I, "amp") -> Relu -> MaxPool 2x2 ("pool")
    -> Conv 3x3 (1e-6) -> GlobalAveragePool -> y. pool's values reach several 1e5."""
    b = OnnxBuilder("overflow", opset=17)
    b.add_initializer("amp_w", (2e5 * np.eye(4, dtype=np.float32)).reshape(4, 4, 1, 1))
    b.add_initializer("w2", np.full((4, 4, 3, 3), 1e-6, np.float32))
    b.add_node("Conv", ["x", "amp_w"], ["a"], "amp")
    b.add_node("Relu", ["a"], ["r"], "relu")
    b.add_node("MaxPool", ["r"], ["pool"], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    b.add_node("Conv", ["pool", "w2"], ["c"], "conv2", pads=[1, 1, 1, 1])
    b.add_node("GlobalAveragePool", ["c"], ["y"], "gap")
    return infer_shapes(b.model([("x", [1, 4, 16, 16])], [("y", [1, 4, 1, 1])]), "test")


def test_a_send_that_overflows_float16_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "overflow.onnx"
    onnx.save_model(overflowing_model(), str(path))
    # A fast device and a slow edge: each path computes up to the pool and sends its tile.
    argv = [str(path), "-o", str(tmp_path / "out"), "--rate", "1", "--runs", "0"]
    argv += ["--fuse-at", "pool", "--grid", "1x2", "--device-flops", "1e15", "--edge-flops", "1e6"]
    code, line = flcompile_cli([*argv, "--send-dtype", "float16"], capsys)
    assert code == 2
    assert "sent tensor 'fl_p" in line and "_pool' overflows float16" in line
    assert "--send-dtype float32" in line
    assert not (tmp_path / "out").exists()
    assert main([*argv, "-q"]) == 0  # float32 sends carry it


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--send-dtype", "bfloat16"], "--send-dtype"),
        (["--verify-inputs", "0"], "--verify-inputs"),
        (["--verify-inputs", "two"], "--verify-inputs"),
    ],
)
def test_bad_send_options_are_one_line_errors(option, needle, squeezenet, tmp_path, capsys) -> None:
    code, line = flcompile_cli(
        [str(squeezenet), "-o", str(tmp_path / "o"), *COMMON, *option], capsys
    )
    assert code == 2 and needle in line
    assert not (tmp_path / "o").exists()


def test_verify_inputs_runs_every_input(squeezenet: Path, tmp_path: Path, monkeypatch) -> None:
    seen = []
    real = flcompile.verify.verify_split

    def counting(*args, **kwargs):
        seen.append(kwargs["options"].input_index)
        return real(*args, **kwargs)

    monkeypatch.setattr(flcompile.verify, "verify_split", counting)
    out = tmp_path / "out"
    assert main([str(squeezenet), "-o", str(out), *COMMON, "--verify-inputs", "4"]) == 0
    assert seen == [0, 1, 2, 3]
    verify = json.loads((out / "plan.json").read_text())["verify"]
    assert verify["inputs"] == 4 and verify["argmax_unchanged"] == [4, 4]


def test_the_summary_names_the_send_dtype_and_both_nfl(squeezenet, tmp_path, capsys) -> None:
    argv = [str(squeezenet), "-o", str(tmp_path / "o"), "--rate", "1.8", "--runs", "0"]
    assert main([*argv, "--send-dtype", "float16", "--verify-inputs", "2"]) == 0
    out = capsys.readouterr().out
    assert "MB/s (float16 sends)" in out
    assert "vs NFL with float32 sends" in out
    assert "argmax unchanged in 2/2 row(s), over 2 inputs" in out
    assert "rtol 0.00390625, atol 0.00390625" in out
