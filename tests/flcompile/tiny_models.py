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
