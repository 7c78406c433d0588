"""Tiny models built in code for the pipeline tests, through the models' `OnnxBuilder`."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto

from flcompile.load import infer_shapes
from flcompile.models.layers import OnnxBuilder


def conv_relu_model() -> ModelProto:
    """Graph: x[1,2,8,8] -> Conv(3x3, pad 1, 4 out) -> Relu -> GlobalAveragePool.

    Conv FLOPs per output pixel: 2 · 4 out · 2 in · 9 = 144; Relu: 4 per pixel.
    """
    b = OnnxBuilder("g", opset=17)
    b.add_initializer("w", np.ones((4, 2, 3, 3), np.float32))
    b.add_node("Conv", ["x", "w"], ["c"], "conv", pads=[1, 1, 1, 1])
    b.add_node("Relu", ["c"], ["r"], "relu")
    b.add_node("GlobalAveragePool", ["r"], ["y"], "gap")
    return infer_shapes(b.model([("x", [1, 2, 8, 8])], [("y", [1, 4, 1, 1])]), "test")


def nhwc_model() -> ModelProto:
    """Graph: image (NHWC 1x33x31x3) -> Transpose(0,3,1,2) -> Conv(3x3/2) -> Relu -> Conv -> Relu
    -> GlobalAveragePool -> Reshape -> logits, as TensorFlow exporters write it.
    """
    b = OnnxBuilder("nhwc", opset=13)
    b.add_initializer("w1", b.rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3)
    b.add_initializer("w2", b.rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2)
    b.add_initializer("shape", np.array([1, 8], np.int64))
    b.add_node("Transpose", ["image"], ["nchw"], "to_nchw", perm=[0, 3, 1, 2])
    b.add_node("Conv", ["nchw", "w1"], ["c1"], "conv1", pads=[1, 1, 1, 1], strides=[2, 2])
    b.add_node("Relu", ["c1"], ["r1"], "relu1")
    b.add_node("Conv", ["r1", "w2"], ["c2"], "conv2", pads=[1, 1, 1, 1])
    b.add_node("Relu", ["c2"], ["r2"], "relu2")
    b.add_node("GlobalAveragePool", ["r2"], ["g"], "gap")
    b.add_node("Reshape", ["g", "shape"], ["logits"], "flatten")
    return infer_shapes(b.model([("image", [1, 33, 31, 3])], [("logits", [1, 8])]), "test")


def opset9_ir3_model() -> ModelProto:
    """Graph (opset 9, IR 3, weights also listed as graph inputs, as old exporters wrote):
    x[1,3,20,20] -> Conv(w, pad 1) -> Relu -> MaxPool(2x2/2) -> Conv(w2) -> GAP -> y.

    Slice-1 takes attributes and MaxPool-8 has no ceil_mode: the tiles must respect both.
    """
    b = OnnxBuilder("old", opset=9, seed=1)
    b.add_initializer("w", b.rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b.add_initializer("w2", b.rng.standard_normal((4, 4, 3, 3)).astype(np.float32))
    b.add_node("Conv", ["x", "w"], ["c"], "conv", pads=[1, 1, 1, 1])
    b.add_node("Relu", ["c"], ["r"], "relu")
    b.add_node("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2])
    b.add_node("Conv", ["p", "w2"], ["c2"], "conv2")
    b.add_node("GlobalAveragePool", ["c2"], ["y"], "gap")
    inputs = [("x", [1, 3, 20, 20]), ("w", [4, 3, 3, 3]), ("w2", [4, 4, 3, 3])]
    model = b.model(inputs, [("y", [1, 4, 1, 1])])
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
    b = OnnxBuilder("shared", opset=17)
    b.add_initializer("w0", b.rng.standard_normal((4, 16, 3, 3)).astype(np.float32) * 0.1)
    b.add_initializer("ws", b.rng.standard_normal(SHARED_WEIGHT_SHAPE).astype(np.float32) * 0.2)
    b.add_node("Conv", ["x", "w0"], ["c0"], "conv0", pads=[1, 1, 1, 1])
    b.add_node("Relu", ["c0"], ["r0"], "relu0")
    for i in range(1, 5):
        weight = "ws" if i == 1 else f"ws_{i}"
        if i > 1:
            b.add_node("Identity", ["ws"], [weight], f"identity{i}")
        b.add_node("Conv", [f"r{i - 1}", weight], [f"c{i}"], f"conv{i}", pads=[1] * 4)
        b.add_node("Relu", [f"c{i}"], [f"r{i}"], f"relu{i}")
    b.add_node("GlobalAveragePool", ["r4"], ["y"], "gap")
    return b.model([("x", [1, 16, 16, 16])], [("y", [1, 4, 1, 1])])  # IR 8, opset 17's
