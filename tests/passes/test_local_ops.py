"""Tests for flcompile.passes.local_ops: which ops are local, and the window each one has."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest

from flcompile.passes.local_ops import (
    AxisRepeat,
    AxisWindow,
    LocalOp,
    classify,
    misinferred_tensors,
)

N, C, H, W = 1, 3, 7, 9


def var(name: str, shape=(N, C, H, W), dtype=np.float32) -> gs.Variable:
    return gs.Variable(name, dtype=dtype, shape=shape)


def const(name: str, values) -> gs.Constant:
    return gs.Constant(name, np.asarray(values))


X = var("x")  # the tiled (spatial) tensor
A = var("a")  # a second tiled tensor


def spatial(t: gs.Tensor) -> bool:
    return t.name in ("x", "a")


def node(op: str, inputs, outputs=None, domain=None, **attrs) -> gs.Node:
    outputs = outputs if outputs is not None else [var("y")]
    return gs.Node(op, name=op.lower(), attrs=attrs, inputs=inputs, outputs=outputs, domain=domain)


WEIGHT = const("w", np.zeros((4, C, 3, 5), np.float32))

NOT_LOCAL = {
    "global_average_pool": (
        node("GlobalAveragePool", [X], [var("y", (N, C, 1, 1))]),
        "GlobalAveragePool is not a local op",
    ),
    "reshape_to_2d": (
        node("Reshape", [X, const("s", [1, -1])], [var("y", (N, C * H * W))]),
        "its output is not a 4-D tensor with static H and W",
    ),
    "reshape_4d": (
        node("Reshape", [X, const("s", [1, 3, 9, 7])], [var("y", (N, C, W, H))]),
        "Reshape is not a local op",
    ),
    "transpose": (
        node("Transpose", [X], [var("y", (N, C, W, H))], perm=[0, 1, 3, 2]),
        "Transpose is not a local op",
    ),
    "resize_half_pixel": (
        node(
            "Resize",
            [X, gs.Variable.empty(), const("scales", np.array([1, 1, 2, 2], np.float32))],
            [var("y", (N, C, 2 * H, 2 * W))],
        ),
        "Resize with coordinate_transformation_mode 'half_pixel' (only 'asymmetric' is supported)",
    ),
    "concat_axis2": (
        node("Concat", [X, A], [var("y", (N, C, 2 * H, W))], axis=2),
        "Concat along axis 2, not the channel axis",
    ),
    "split_axis3": (
        node("Split", [X], [var("y0", (N, C, H, 4)), var("y1", (N, C, H, 5))], axis=3),
        "Split along axis 3, not the channel axis",
    ),
    "pad_reflect": (
        node(
            "Pad",
            [X, const("p", [0, 0, 1, 1, 0, 0, 1, 1])],
            [var("y", (N, C, 9, 11))],
            mode="reflect",
        ),
        "Pad mode 'reflect' reads mirrored or edge pixels",
    ),
    "pad_edge": (
        node(
            "Pad", [X, const("p", [0, 0, 1, 1, 0, 0, 1, 1])], [var("y", (N, C, 9, 11))], mode="edge"
        ),
        "Pad mode 'edge' reads mirrored or edge pixels",
    ),
    "pad_variable_pads": (
        node("Pad", [X, var("p", (8,), np.int64)], [var("y", (N, C, 9, 11))]),
        "its pads are not a constant",
    ),
    "maxpool_indices": (
        node("MaxPool", [X], [var("y"), var("i", dtype=np.int64)], kernel_shape=[1, 1]),
        "MaxPool with an Indices output depends on absolute positions",
    ),
    "conv_variable_weight": (
        node("Conv", [X, var("w", (4, C, 3, 3))], [var("y", (N, 4, 5, 7))]),
        "its weights are not constants",
    ),
    "conv_tiled_weight": (
        node("Conv", [X, A], [var("y", (N, 3, 1, 1))]),
        "its weights are not constants",
    ),
    "conv_auto_pad_left": (
        node("Conv", [X, WEIGHT], [var("y", (N, 4, 7, 9))], auto_pad="SAME_UPPER"),
        "auto_pad could not be resolved to explicit pads",
    ),
    "conv_3d": (
        node(
            "Conv",
            [var("x", (N, C, 4, H, W)), const("w3", np.zeros((4, C, 1, 1, 1), np.float32))],
            [var("y", (N, 4, 4, H, W))],
        ),
        "its output is not a 4-D tensor with static H and W",
    ),
    "custom_domain": (
        node("Foo", [X], domain="com.example"),
        "custom-domain op com.example.Foo",
    ),
    "cast_to_int": (
        node("Cast", [X], [var("y", dtype=np.int64)], to=7),
        "its output is not floating point",
    ),
    "dynamic_hw": (
        node("Relu", [X], [var("y", (N, C, "h", W))]),
        "its output is not a 4-D tensor with static H and W",
    ),
    "reads_no_tiled_tensor": (
        node("Relu", [var("other")]),
        "it reads no tensor of the fusable region",
    ),
    "add_broadcast_spatial": (
        node("Add", [X, var("a", (N, C, 1, 1))]),
        "its input a is broadcast over H/W",
    ),
    "add_variable": (
        node("Add", [X, var("v", (1, C, 1, 1))]),
        "its input v is neither tiled nor a constant broadcast over H/W",
    ),
    "add_constant_over_hw": (
        node("Add", [X, const("k", np.zeros((1, C, H, W), np.float32))]),
        "its input k is neither tiled nor a constant broadcast over H/W",
    ),
    "mul_constant_over_w": (
        node("Mul", [X, const("k", np.zeros((W,), np.float32))]),
        "its input k is neither tiled nor a constant broadcast over H/W",
    ),
    "prelu_per_column_slope": (
        node("PRelu", [X, const("slope", np.zeros((W,), np.float32))]),
        "its input slope is neither tiled nor a constant broadcast over H/W",
    ),
    "concat_with_constant": (
        node(
            "Concat",
            [X, const("k", np.zeros((N, 1, H, W), np.float32))],
            [var("y", (N, 4, H, W))],
            axis=1,
        ),
        "Concat of a tiled tensor with a constant",
    ),
    "split_variable_sizes": (
        node(
            "Split",
            [X, var("s", (2,), np.int64)],
            [var("y0", (N, 1, H, W)), var("y1", (N, 2, H, W))],
            axis=1,
        ),
        "its split sizes are not a constant",
    ),
    "batchnorm_training": (
        node(
            "BatchNormalization",
            [X, *(const(n, np.ones(C, np.float32)) for n in "sbmv")],
            [var("y"), var("mean", (C,)), var("var", (C,))],
        ),
        "BatchNormalization in training mode",
    ),
    "relu_variable_parameter": (
        node("Clip", [X, var("lo", ())]),
        "its parameters are not constants",
    ),
}


@pytest.mark.parametrize(("n", "reason"), NOT_LOCAL.values(), ids=NOT_LOCAL.keys())
def test_a_non_local_op_gives_its_reason(n: gs.Node, reason: str) -> None:
    assert classify(n, spatial) == reason


LOCAL = {
    "conv": (
        node(
            "Conv",
            [X, WEIGHT, const("b", np.zeros(4, np.float32))],
            [var("y", (N, 4, 5, 3))],
            pads=[1, 2, 3, 4],
            strides=[2, 3],
            dilations=[1, 2],
        ),
        LocalOp(AxisWindow(3, 2, 1, 1, 3), AxisWindow(5, 3, 2, 2, 4)),
    ),
    "maxpool": (
        node(
            "MaxPool",
            [X],
            [var("y", (N, C, 4, 5))],
            kernel_shape=[2, 3],
            strides=[2, 2],
            pads=[0, 1, 1, 1],
        ),
        LocalOp(AxisWindow(2, 2, 1, 0, 1), AxisWindow(3, 2, 1, 1, 1)),
    ),
    "averagepool": (
        node(
            "AveragePool",
            [X],
            [var("y", (N, C, 7, 9))],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
        ),
        LocalOp(AxisWindow(3, 1, 1, 1, 1), AxisWindow(3, 1, 1, 1, 1)),
    ),
    "pad": (
        node(
            "Pad",
            [X, const("p", [0, 0, 1, 2, 0, 0, 3, 4]), const("v", np.float32(0.5))],
            [var("y", (N, C, 11, 15))],
        ),
        LocalOp(AxisWindow(pad_begin=1, pad_end=3), AxisWindow(pad_begin=2, pad_end=4)),
    ),
    "pad_axes": (
        node(
            "Pad",
            [X, const("p", [1, 2, 3, 4]), gs.Variable.empty(), const("axes", [-2, -1])],
            [var("y", (N, C, 11, 15))],
        ),
        LocalOp(AxisWindow(pad_begin=1, pad_end=3), AxisWindow(pad_begin=2, pad_end=4)),
    ),
    "pad_opset2_attr": (
        node("Pad", [X], [var("y", (N, C, 8, 9))], pads=[0, 0, 1, 0, 0, 0, 0, 0]),
        LocalOp(AxisWindow(pad_begin=1), AxisWindow()),
    ),
    "space_to_depth": (
        node("SpaceToDepth", [var("x", (N, C, 8, 10))], [var("y", (N, 4 * C, 4, 5))], blocksize=2),
        LocalOp(AxisWindow(2, 2), AxisWindow(2, 2)),
    ),
    "depth_to_space": (
        node(
            "DepthToSpace", [var("x", (N, 9, H, W))], [var("y", (N, 1, 3 * H, 3 * W))], blocksize=3
        ),
        LocalOp(AxisRepeat(3), AxisRepeat(3)),
    ),
    "relu": (node("Relu", [X]), LocalOp()),
    "relu_fp16": (
        node("Relu", [var("x", dtype=np.float16)], [var("y", dtype=np.float16)]),
        LocalOp(),
    ),
    "clip_constants": (
        node("Clip", [X, const("lo", np.float32(0)), gs.Variable.empty()]),
        LocalOp(),
    ),
    "batchnorm": (
        node("BatchNormalization", [X, *(const(n, np.ones(C, np.float32)) for n in "sbmv")]),
        LocalOp(),
    ),
    "prelu_channel_slope": (
        node("PRelu", [X, const("slope", np.zeros((C, 1, 1), np.float32))]),
        LocalOp(spatial_inputs=(0,)),
    ),
    "residual_add": (node("Add", [X, A]), LocalOp(spatial_inputs=(0, 1))),
    "constant_first": (
        node("Mul", [const("k", np.float32(2)), X]),
        LocalOp(spatial_inputs=(1,)),
    ),
    "concat_channels": (
        node("Concat", [X, A], [var("y", (N, 6, H, W))], axis=-3),
        LocalOp(spatial_inputs=(0, 1)),
    ),
    "split_channels": (
        node(
            "Split",
            [X, const("s", [1, 2])],
            [var("y0", (N, 1, H, W)), var("y1", (N, 2, H, W))],
            axis=1,
        ),
        LocalOp(),
    ),
}


@pytest.mark.parametrize(("n", "expected"), LOCAL.values(), ids=LOCAL.keys())
def test_a_local_op_gives_its_window(n: gs.Node, expected: LocalOp) -> None:
    assert classify(n, spatial) == expected


def test_axis_window_span() -> None:
    # Should give: d·(k − 1) + 1.
    assert AxisWindow(3, 1, 2).span == 5
    assert AxisWindow(1).span == 1
    assert AxisWindow(4, 2, 3).span == 10


def _pool_lengths(op: str, k: int, s: int, pads: tuple[int, int], ceil: int, sizes) -> list[int]:
    """onnxruntime's output widths of a 1×k pool over inputs 1 pixel high and `sizes` wide."""
    y = onnx.helper.make_node(
        op, ["x"], ["y"], kernel_shape=[1, k], strides=[1, s], pads=[0, pads[0], 0, pads[1]],
        ceil_mode=ceil,
    )  # fmt: skip
    graph = onnx.helper.make_graph(
        [y],
        "pool",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 1, "w"])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [sess.run(None, {"x": np.zeros((1, 1, 1, n), np.float32)})[0].shape[3] for n in sizes]


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_axis_window_output_size_is_what_onnxruntime_computes(op: str) -> None:
    # Every kernel up to 3, stride up to 4 (windows that skip pixels included), pad pair
    # below the kernel and ceil_mode, on every input the window fits (padded).
    checked = 0
    for k, s, ceil in itertools.product((1, 2, 3), (1, 2, 3, 4), (0, 1)):
        for pads in itertools.product(range(k), repeat=2):
            sizes = [n for n in range(1, 12) if n + sum(pads) >= k]
            window = AxisWindow(k, s, 1, *pads)
            want = [window.output_size(n, bool(ceil)) for n in sizes]
            assert _pool_lengths(op, k, s, pads, ceil, sizes) == want, (k, s, pads, ceil)
            checked += len(sizes)
    assert checked > 1000


def _ceil_pool(declared: tuple[int, int]) -> gs.Node:
    # MaxPool k 2, s 3, pads (0, 0, 1, 1), ceil over 6x6: the third window would start at 6,
    # in the end pad, so onnxruntime computes 2x2 where onnx infers 3x3.
    x = var("x", (N, C, 6, 6))
    y = var("y", (N, C, *declared))
    return node("MaxPool", [x], [y], kernel_shape=[2, 2], strides=[3, 3], pads=[0, 0, 1, 1],
                ceil_mode=1)  # fmt: skip


def test_a_pool_whose_size_onnx_infers_wrongly_is_not_local() -> None:
    assert classify(_ceil_pool((3, 3)), spatial) == (
        "onnx shape inference gives it 3x3 outputs where onnxruntime computes 2x2 "
        "(a ceil_mode window would start in the end padding)"
    )
    assert classify(_ceil_pool((2, 2)), spatial) == LocalOp(
        AxisWindow(2, 3, 1, 0, 1), AxisWindow(2, 3, 1, 0, 1)
    )


def test_misinferred_tensors_run_from_the_pool_to_a_global_pool() -> None:
    # Graph: x -> MaxPool (declared 3x3, computes 2x2) -> p -> Relu -> r -> GAP -> g -> Relu -> h
    pool = _ceil_pool((3, 3))
    p = pool.outputs[0]
    r, g, h = var("r", p.shape), var("g", (N, C, 1, 1)), var("h", (N, C, 1, 1))
    nodes = [
        pool,
        gs.Node("Relu", "relu", inputs=[p], outputs=[r]),
        gs.Node("GlobalAveragePool", "gap", inputs=[r], outputs=[g]),
        gs.Node("Relu", "relu2", inputs=[g], outputs=[h]),
    ]
    graph = gs.Graph(nodes=nodes, inputs=[pool.inputs[0]], outputs=[h])
    wrong = misinferred_tensors(graph)
    assert set(wrong) == {"y", "r"}
    assert wrong["r"].startswith("maxpool (MaxPool): onnx shape inference gives it 3x3")
