"""Bad input and broken rewrites: exit 2 or 3, one clean line, nothing written (docs/design.md §8).

Each case calls the CLI's `main` in-process as a user's shell would, and checks the exit
code, that stderr is one `flcompile: error:` line naming the culprit, and that OUT was not
created (or, where one existed, that it is byte-identical afterwards).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tiny_models import conv_relu_model

import flcompile.emit
import flcompile.model_io
from flcompile import models
from flcompile.atomic_output import atomic_directory
from flcompile.cli import main
from flcompile.output_guard import MARKER


def flcompile_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("flcompile: error: ") and "Traceback" not in err
    return code, lines[0]


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save_model(model, str(path))
    return path


def two_input_model(second_shape: list[int]) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "bias"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8]),
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, second_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def no_image_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        (no_image_model(), "no 4-D float"),
        (two_input_model([1, 4, 8, 8]), "several 4-D inputs"),
        (two_input_model([1, 4, 1, 1]), "several 4-D inputs"),
        (two_input_model([4, 1, 1]), "inputs besides the image"),
    ],
    ids=["no-image", "two-images", "image-and-4d-bias", "image-and-bias"],
)
def test_model_inputs_that_cannot_be_tiled(model, needle, tmp_path, capsys) -> None:
    path = save(model, tmp_path / "m.onnx")
    code, line = flcompile_cli([str(path), "--rate", "1", "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and needle in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((1, 2, 8, 7), np.float32), "expects"),
        (np.zeros((1, 2, 8, 8), np.float64), "float64"),
        (None, "x.npy"),
    ],
    ids=["wrong-shape", "wrong-dtype", "missing"],
)
def test_bad_input_files(array, needle, tmp_path, capsys) -> None:
    model = save(conv_relu_model(), tmp_path / "m.onnx")
    data = tmp_path / "x.npy"
    if array is not None:
        np.save(data, array)
    args = [str(model), "--rate", "1", "--input", str(data), "-o", str(tmp_path / "out")]
    code, line = flcompile_cli(args, capsys)
    assert code == 2 and needle in line
    assert not (tmp_path / "out").exists()


def test_grid_without_any_tensor_to_fuse_at(tmp_path, capsys) -> None:
    # Graph: x -> Resize -> Conv -> y: the first op is not local, so nothing can be fused.
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    graph = helper.make_graph(
        [
            helper.make_node("Resize", ["x", "", "scales"], ["r"], name="upsample"),
            helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 16, 16])],
        [w, scales],
    )
    path = save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx"
    )
    code, line = flcompile_cli([str(path), "--rate", "1", "--grid", "2x2", "-o", "o"], capsys)
    assert code == 2 and "upsample" in line and "Resize" in line
    # Without --grid the best plan without fused layers is emitted, and the summary says why.
    assert main([str(path), "--rate", "1", "-o", str(tmp_path / "o"), "--runs", "0"]) == 0
    assert "no tensor to fuse at: upsample (Resize)" in capsys.readouterr().out


def test_a_broken_rewrite_is_caught_and_named(tmp_path, capsys, monkeypatch) -> None:
    """Inject a wrong edge model: verification must fail with exit 3, naming the output."""
    real_emit = flcompile.emit.emit_fused

    def broken_emit(*args, **kwargs):
        emitted = real_emit(*args, **kwargs)
        edge = emitted.edge
        out = edge.graph.output[0].name
        for node in edge.graph.node:
            node.output[:] = [f"{o}_before_bug" if o == out else o for o in node.output]
        bump = numpy_helper.from_array(np.array(1e-2, np.float32), "bug_bump")
        edge.graph.initializer.append(bump)
        edge.graph.node.append(helper.make_node("Add", [f"{out}_before_bug", "bug_bump"], [out]))
        return emitted

    monkeypatch.setattr("flcompile.plans.fused.emit_fused", broken_emit)
    model = save(conv_relu_model(), tmp_path / "m.onnx")
    with atomic_directory(tmp_path / "out") as earlier:
        (earlier / "keep.txt").write_text("an earlier good result")
    args = [str(model), "--rate", "0.01", "--grid", "2x2", "--fuse-at", "r", "-o", "out"]
    monkeypatch.chdir(tmp_path)
    code, line = flcompile_cli(args, capsys)
    assert code == 3
    assert "verification failed" in line and "'y'" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "keep.txt"]
    assert (tmp_path / "out" / "keep.txt").read_text() == "an earlier good result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out"]


def test_external_data_outputs_verify_from_files(tmp_path, monkeypatch) -> None:
    """Past the external-data threshold, every model is written with a .data file and still
    verifies, since verification loads the written files (as for models over 2 GB)."""
    monkeypatch.setattr(flcompile.model_io, "EXTERNAL_DATA_BYTES", 100)
    model = save(models.build("squeezenet", width=0.25, size=64), tmp_path / "m.onnx")
    out = tmp_path / "out"
    args = ["--rate", "0.01", "--grid", "2x2", "-o", str(out), "--runs", "1", "--emit-tiled"]
    assert main([str(model), *args]) == 0
    assert (out / "tiled.onnx.data").exists() and (out / "edge.onnx.data").exists()
    reloaded = onnx.load(str(out / "tiled.onnx"), load_external_data=False)
    assert any(t.data_location == TensorProto.EXTERNAL for t in reloaded.graph.initializer)
