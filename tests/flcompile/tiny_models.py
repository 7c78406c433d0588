"""Tiny models built in code for the pipeline tests."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from flcompile.load import infer_shapes


def conv_relu_model() -> ModelProto:
    """Graph: x[1,2,8,8] -> Conv(3x3, pad 1, 4 out) -> Relu -> GlobalAveragePool.

    Conv FLOPs per output pixel: 2 · 4 out · 2 in · 9 = 144; Relu: 4 per pixel.
    """
    w = numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["y"], name="gap"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return infer_shapes(model, "test")


def nhwc_model() -> ModelProto:
    """Graph: image (NHWC 1x33x31x3) -> Transpose(0,3,1,2) -> Conv(3x3/2) -> Relu -> Conv -> Relu
    -> GlobalAveragePool -> Reshape -> logits, as TensorFlow exporters write it.
    """
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w1"),
        numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2, "w2"),
        numpy_helper.from_array(np.array([1, 8], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv", ["nchw", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Reshape", ["g", "shape"], ["logits"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes,
        "nhwc",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 33, 31, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return infer_shapes(model, "test")


def opset9_ir3_model() -> ModelProto:
    """Graph (opset 9, IR 3, weights also listed as graph inputs, as old exporters wrote):
    x[1,3,20,20] -> Conv(w, pad 1) -> Relu -> MaxPool(2x2/2) -> Conv(w2) -> GAP -> y.

    Slice-1 takes attributes and MaxPool-8 has no ceil_mode: the tiles must respect both.
    """
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["c2"], name="conv2"),
        helper.make_node("GlobalAveragePool", ["c2"], ["y"], name="gap"),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 20]),
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]),
        helper.make_tensor_value_info("w2", TensorProto.FLOAT, [4, 4, 3, 3]),
    ]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])
    graph = helper.make_graph(nodes, "old", inputs, [output], [w, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    return model


SHARED_WEIGHT_SHAPE = (4, 4, 3, 3)


def shared_weight_model() -> ModelProto:
    """Graph, as the legacy torch exporter writes deduplicated weights:
    x[1,16,16,16] -> Conv(w0, 4 out) -> Relu -> Conv(ws) -> Relu -> Conv(Identity(ws)) -> Relu
    -> Conv(Identity(ws)) -> Relu -> Conv(Identity(ws)) -> Relu -> GlobalAveragePool -> y.

    One initializer `ws` feeds four convolutions, three of them through their own Identity. The
    input is wider than what follows, so a fast device keeps convolutions for itself.
    """
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 16, 3, 3)).astype(np.float32) * 0.1, "w0"),
        numpy_helper.from_array(
            rng.standard_normal(SHARED_WEIGHT_SHAPE).astype(np.float32) * 0.2, "ws"
        ),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
    ]
    for i in range(1, 5):
        weight = "ws" if i == 1 else f"ws_{i}"
        if i > 1:
            nodes.append(helper.make_node("Identity", ["ws"], [weight], name=f"identity{i}"))
        conv = helper.make_node("Conv", [f"r{i - 1}", weight], [f"c{i}"], f"conv{i}", pads=[1] * 4)
        nodes.append(conv)
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
    nodes.append(helper.make_node("GlobalAveragePool", ["r4"], ["y"], name="gap"))
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
