"""Tests for flcompile.model_io and the checks on written models: weight-free copies, the
export that copies each weight once, and saving that hands back the bytes it wrote."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper

import flcompile.model_io
from flcompile import models
from flcompile.emit import check_emitted
from flcompile.errors import InternalError
from flcompile.load import load_model
from flcompile.model_io import export_graph, save_model, tensor_bytes, without_weight_data


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    # Weights from 64 bytes to ~150 KB: some over the 4096-byte threshold, some under.
    return models.build("squeezenet", width=0.25, size=64)


def test_without_weight_data_is_a_copy_with_the_large_data_cleared(model):
    expected = onnx.ModelProto()
    expected.CopyFrom(model)
    cleared = 0
    for tensor in expected.graph.initializer:
        if tensor_bytes(tensor) > 4096:
            tensor.ClearField("raw_data")
            cleared += 1
    light = without_weight_data(model)
    assert cleared > 0 and light == expected
    assert all(t.HasField("raw_data") for t in model.graph.initializer), "source untouched"


def test_export_graph_writes_what_gs_writes(model):
    source = onnx.ModelProto()
    source.CopyFrom(model)  # gs.export_onnx renames the source's tensors along with the graph's
    graph = gs.import_onnx(source)
    big = next(
        t
        for t in graph.tensors().values()
        if isinstance(t, gs.Constant) and np.prod(t.shape) * 4 > 4096
    )
    big.name = "renamed_weight"  # exported under the graph's name, not the source tensor's
    extra = gs.Constant("numpy_weight", np.arange(2048, dtype=np.float32))
    total = gs.Variable("numpy_sum", dtype=np.float32)
    graph.nodes.append(
        gs.Node("Add", "add_numpy", inputs=[graph.outputs[0], extra], outputs=[total])
    )
    ours = export_graph(graph)
    assert ours.SerializeToString() == gs.export_onnx(graph).SerializeToString()
    # gs.export_onnx ran after export_graph: equal bytes also show the graph was restored.
    assert "renamed_weight" in {t.name for t in ours.graph.initializer}


def test_save_model_returns_the_bytes_it_wrote(model, tmp_path):
    path = tmp_path / "m.onnx"
    written = save_model(model, path)
    assert written == path.read_bytes()
    assert onnx.load_model_from_string(written) == model


def test_save_model_with_external_data_returns_nothing(model, tmp_path, monkeypatch):
    monkeypatch.setattr(flcompile.model_io, "EXTERNAL_DATA_BYTES", 100)
    light = onnx.ModelProto()
    light.CopyFrom(model)
    assert save_model(light, tmp_path / "m.onnx") is None
    assert (tmp_path / "m.onnx.data").exists()
    check_emitted(tmp_path / "m.onnx", "m.onnx")  # a file with external data checks by path


def test_check_emitted_on_bytes_names_a_broken_model():
    # Graph: X -> Relu -> Y, where Relu reads a tensor that nothing defines.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["nowhere"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])],
    )
    broken = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InternalError, match=r"edge\.onnx fails onnx\.checker"):
        check_emitted(broken.SerializeToString(), "edge.onnx")


def test_a_zoo_model_is_serialized_once_for_its_hash_and_onnxruntime():
    loaded = load_model("squeezenet")
    assert loaded.original is loaded.serialized
    assert loaded.sha256 == hashlib.sha256(loaded.serialized).hexdigest()
    assert onnx.load_model_from_string(loaded.serialized) == models.build("squeezenet")


def test_a_file_is_handed_to_onnxruntime_by_its_path(model, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    loaded = load_model(str(path))
    assert loaded.serialized is None and loaded.original == str(path)
