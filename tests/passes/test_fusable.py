"""Tests for flcompile.passes.fusable: the fusable prefix and the candidate tensors F."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from graphs import INPUT, OUTPUT, act, build, concat, conv, prepare, residual
from onnx import TensorProto, helper, numpy_helper

from flcompile.errors import UnsupportedModelError
from flcompile.load import infer_shapes
from flcompile.passes.fusable import find_candidates, find_prefix, spatial_input


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)  # fills in the outputs' shapes
    onnx.checker.check_model(model, full_check=True)
    return model


def _x(shape=(1, 3, 7, 9)):
    return helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, list(shape))


def _out(name=OUTPUT, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, None)


def _init(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(values, dtype), name)


def _head_then(stop: onnx.NodeProto, inits=(), extra_outputs=()):
    # Graph: x -> conv -> c -> relu -> r -> <stop> -> y
    w = np.random.default_rng(0).standard_normal((3, 3, 3, 3)).astype(np.float32)
    return _model(
        [
            helper.make_node("Conv", [INPUT, "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            stop,
        ],
        [_x()],
        [_out(), *extra_outputs],
        [_init("W", w), *inits],
    )


STOPS = {
    "global_average_pool": (
        helper.make_node("GlobalAveragePool", ["r"], [OUTPUT], name="stop"),
        (),
        "GlobalAveragePool is not a local op",
    ),
    "flatten": (
        helper.make_node("Flatten", ["r"], [OUTPUT], name="stop"),
        (),
        "its output is not a 4-D tensor with static H and W",
    ),
    "reshape": (
        helper.make_node("Reshape", ["r", "shape"], [OUTPUT], name="stop"),
        (_init("shape", [1, 3, 9, 7], np.int64),),
        "Reshape is not a local op",
    ),
    "transpose": (
        helper.make_node("Transpose", ["r"], [OUTPUT], perm=[0, 1, 3, 2], name="stop"),
        (),
        "Transpose is not a local op",
    ),
    "resize_half_pixel": (
        helper.make_node("Resize", ["r", "", "scales"], [OUTPUT], name="stop"),
        (_init("scales", [1, 1, 2, 2]),),
        "Resize with coordinate_transformation_mode 'half_pixel' (only 'asymmetric' is supported)",
    ),
    "concat_axis2": (
        helper.make_node("Concat", ["r", "r"], [OUTPUT], axis=2, name="stop"),
        (),
        "Concat along axis 2, not the channel axis",
    ),
    "pad_reflect": (
        helper.make_node("Pad", ["r", "pads"], [OUTPUT], mode="reflect", name="stop"),
        (_init("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64),),
        "Pad mode 'reflect' reads mirrored or edge pixels",
    ),
    "reduce_mean_hw": (
        helper.make_node("ReduceMean", ["r"], [OUTPUT], axes=[2, 3], name="stop"),
        (),
        "ReduceMean is not a local op",
    ),
}


@pytest.mark.parametrize(("stop", "inits", "reason"), STOPS.values(), ids=STOPS.keys())
def test_the_prefix_stops_at_a_non_local_op_and_keeps_the_reason(stop, inits, reason) -> None:
    # Graph: x -> conv -> relu -> <op> -> y
    # Should give: prefix (conv, relu), stops ["stop (<op>): <reason>"], F candidates c and r.
    prep = prepare(_head_then(stop, inits))
    assert prep.prefix.nodes == ("conv", "relu")
    assert prep.prefix.stops == (f"stop ({stop.op_type}): {reason}",)
    assert [c.tensor for c in prep.candidates] == ["c", "r"]


def test_maxpool_with_indices_ends_the_prefix() -> None:
    stop = helper.make_node("MaxPool", ["r"], [OUTPUT, "idx"], kernel_shape=[2, 2], name="stop")
    model = _head_then(stop, extra_outputs=[_out("idx", TensorProto.INT64)])
    prep = prepare(model)
    assert prep.prefix.nodes == ("conv", "relu")
    assert prep.prefix.stops == (
        "stop (MaxPool): MaxPool with an Indices output depends on absolute positions",
    )


def test_a_conv_whose_weight_is_computed_from_the_input_ends_the_prefix() -> None:
    # Graph: x -> Relu -> r;  x -> Slice (a 3x3 patch) -> w;  Conv(r, w) -> y
    # Should give: prefix (relu); the Slice and the Conv (whose weight is not a constant)
    # both end it, and there is no F since x also leaves through the Slice.
    inits = [_init(n, v, np.int64) for n, v in [("s", [0, 0]), ("e", [3, 3]), ("a", [2, 3])]]
    model = _model(
        [
            helper.make_node("Relu", [INPUT], ["r"], name="relu"),
            helper.make_node("Slice", [INPUT, "s", "e", "a"], ["w"], name="patch"),
            helper.make_node("Conv", ["r", "w"], [OUTPUT], name="conv"),
        ],
        [_x((3, 3, 7, 9))],
        [_out()],
        inits,
    )
    prep = prepare(model)
    assert prep.prefix.nodes == ("relu",)
    assert "conv (Conv): its weights are not constants" in prep.prefix.stops
    assert "patch (Slice): Slice is not a local op" in prep.prefix.stops
    assert prep.candidates == []  # x also feeds the Slice, outside any block


def _transpose_first(perm: list[int], shape: tuple[int, ...]):
    w = np.zeros((3, 3, 1, 1), np.float32)
    return _model(
        [
            helper.make_node("Transpose", [INPUT], ["t"], perm=perm, name="to_nchw"),
            helper.make_node("Conv", ["t", "W"], ["c"], name="conv"),
            helper.make_node("Relu", ["c"], [OUTPUT], name="relu"),
        ],
        [_x(shape)],
        [_out()],
        [_init("W", w)],
    )


def test_an_nhwc_input_is_tiled_through_its_transpose() -> None:
    # Graph: x (NHWC 1x7x9x3) -> Transpose(0,3,1,2) -> t (NCHW) -> conv -> relu -> y
    # Should give: the Transpose in the prefix, the input's H/W on axes 1 and 2.
    prep = prepare(_transpose_first([0, 3, 1, 2], (1, 7, 9, 3)))
    assert prep.prefix.nodes == ("to_nchw", "conv", "relu")
    assert prep.prefix.input_axes == (1, 2)
    assert [c.tensor for c in prep.candidates] == ["t", "c", OUTPUT]


def test_another_transpose_first_gives_an_empty_prefix() -> None:
    # Graph: x (1x3x7x9) -> Transpose(0,1,3,2) (swaps H and W) -> conv -> relu -> y
    # Should give: no prefix, no candidate, the Transpose named as where it ends.
    prep = prepare(_transpose_first([0, 1, 3, 2], (1, 3, 7, 9)))
    assert prep.prefix.nodes == ()
    assert prep.prefix.input_axes == (2, 3)
    assert prep.prefix.stops == ("to_nchw (Transpose): Transpose is not a local op",)
    assert prep.candidates == []


def test_residual_block_candidates() -> None:
    # Graph: x -> conv0 -> relu1 -> a -> conv2 -> relu3 -> conv4 -> add5(a, .) -> relu6
    #        -> GAP -> Flatten -> Gemm -> y
    # Should give: F in {conv0, relu1, add5, relu6} outputs; nothing inside the block
    # (conv2, relu3, conv4 outputs: a also leaves through the skip).
    p = (1, 1, 1, 1)
    model = build(
        [
            conv(4, 3, 1, 1, p),
            act("Relu"),
            residual([conv(4, 3, 1, 1, p), act("Relu"), conv(4, 3, 1, 1, p)]),
            act("Relu"),
        ],
        (1, 3, 9, 11),
    )
    prep = prepare(model)
    assert [c.tensor for c in prep.candidates] == [
        "conv0_out",
        "relu1_out",
        "add5_out",
        "relu6_out",
    ]
    add = prep.candidates[2]
    assert add.block == ("conv0", "relu1", "conv2", "relu3", "conv4", "add5")
    assert add.shape == (1, 4, 9, 11)
    assert prep.prefix.stops == (
        "globalaveragepool7 (GlobalAveragePool): GlobalAveragePool is not a local op",
    )


def _fire(extra_output: str | None = None):
    # Graph: x -> conv0 (squeeze) -> relu1 -> s;  s -> conv2 (1x1) -> relu3 -> e1;
    #        s -> conv4 (3x3) -> relu5 -> e3;  concat6(e1, e3) -> GAP -> Flatten -> Gemm -> y
    model = build(
        [
            conv(2, 1),
            act("Relu"),
            concat([conv(3, 1), act("Relu")], [conv(3, 3, 1, 1, (1, 1, 1, 1)), act("Relu")]),
        ],
        (1, 4, 13, 13),
    )
    if extra_output:
        model.graph.output.append(
            helper.make_tensor_value_info(extra_output, TensorProto.FLOAT, None)
        )
    return model


def test_fire_module_candidates() -> None:
    # Should give: the squeeze output s (both expand branches start from it and nothing else
    # leaves the squeeze) and the Concat; no tensor inside one expand branch (s still
    # leaves through the other branch).
    prep = prepare(_fire())
    assert [c.tensor for c in prep.candidates] == ["conv0_out", "relu1_out", "concat6_out"]
    # The block in the topological order normalize sorted the graph into.
    assert prep.candidates[-1].block == (
        "conv0",
        "relu1",
        "conv2",
        "conv4",
        "relu3",
        "relu5",
        "concat6",
    )


def test_a_branch_tensor_that_is_also_an_output_is_not_fused_over() -> None:
    # Graph: the fire module, with e1 (relu3) also a graph output.
    # Should give: no longer the Concat (e1 reaches an output without passing through it);
    # the squeeze output still is a candidate.
    prep = prepare(_fire(extra_output="relu3_out"))
    assert [c.tensor for c in prep.candidates] == ["conv0_out", "relu1_out"]


def test_the_squeeze_output_is_a_candidate_only_when_nothing_before_it_leaves() -> None:
    # Graph: the fire module, with the squeeze conv's output (before its Relu) also a graph
    # output. Should give: only that tensor; neither the squeeze Relu output nor the Concat
    # (the pre-Relu tensor leaves their blocks too).
    prep = prepare(_fire(extra_output="conv0_out"))
    assert [c.tensor for c in prep.candidates] == ["conv0_out"]


def test_an_input_read_outside_the_prefix_leaves_no_candidate() -> None:
    # Graph: x -> conv0 -> relu1 -> GAP -> a;  x -> GAP -> b;  y = Add(a, b)
    # Should give: a prefix (conv0, relu1) but no F: a path from x to y skips every tensor.
    w = np.random.default_rng(0).standard_normal((3, 3, 3, 3)).astype(np.float32)
    model = _model(
        [
            helper.make_node("Conv", [INPUT, "W"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu1"),
            helper.make_node("GlobalAveragePool", ["r"], ["a"], name="gap_a"),
            helper.make_node("GlobalAveragePool", [INPUT], ["b"], name="gap_b"),
            helper.make_node("Add", ["a", "b"], [OUTPUT], name="add"),
        ],
        [_x()],
        [_out()],
        [_init("W", w)],
    )
    prep = prepare(model)
    assert prep.prefix.nodes == ("conv0", "relu1")
    assert prep.candidates == []


def test_spatial_input_errors() -> None:
    flat = _model(
        [helper.make_node("Relu", [INPUT], [OUTPUT])],
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 10])],
        [_out()],
    )
    with pytest.raises(UnsupportedModelError, match="no 4-D float"):
        spatial_input(gs.import_onnx(flat), "flat")
    dynamic = _model(
        [helper.make_node("Relu", [INPUT], [OUTPUT])],
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 3, "h", "w"])],
        [_out()],
    )
    with pytest.raises(UnsupportedModelError, match="dynamic H/W") as info:
        spatial_input(gs.import_onnx(dynamic), "dyn")
    assert "--input-shape" in str(info.value)
    two = _model(
        [helper.make_node("Add", [INPUT, "z"], [OUTPUT])],
        [_x(), helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 7, 9])],
        [_out()],
    )
    with pytest.raises(UnsupportedModelError, match="several 4-D inputs"):
        spatial_input(gs.import_onnx(two), "two")


def test_find_candidates_works_on_the_imported_graph() -> None:
    # The same answer from a fresh import of the prepared model.
    prep = prepare(_fire())
    graph = gs.import_onnx(infer_shapes(prep.model, "again"))
    prefix = find_prefix(graph)
    assert [c.tensor for c in find_candidates(graph, prefix)] == [c.tensor for c in prep.candidates]
