"""Tests for flcompile.passes.receptive_field: the region math of docs/design.md §2.

Two kinds: hand-computed numbers for `AxisWindow.backward`, `split_axis` and `backward`, and the
region math of every supported op checked against onnxruntime. For the latter a one-op
model runs whole; then, for random output intervals, the input region `backward` returns
is sliced out and a tile copy of the op with the analysis' tile pads runs on it (built here
by hand, independently of tile.py), and must give the same slice of the full output.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from graphs import (
    INPUT,
    OUTPUT,
    act,
    avgpool,
    build,
    concat,
    const_op,
    conv,
    d2s,
    export,
    maxpool,
    pad,
    prepare,
    random_input,
    residual,
    run,
    s2d,
    split,
)
from onnx import helper, numpy_helper

from flcompile.passes.local_ops import AxisWindow
from flcompile.passes.receptive_field import (
    EmptyRegionError,
    Interval,
    Tiling,
    backward,
    make_block,
    make_tiling,
    split_axis,
    tiling_at,
    uniform_bounds,
)
from flcompile.passes.tile import tile_graph

# --------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize(
    ("size", "parts", "expected"),
    [
        # Should give: sizes 4, 3, 3, 3 (larger first) that cover [0, 13) once.
        (13, 4, [(0, 4), (4, 7), (7, 10), (10, 13)]),
        (7, 1, [(0, 7)]),
        (5, 5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),
        (17, 3, [(0, 6), (6, 12), (12, 17)]),
        (23, 2, [(0, 12), (12, 23)]),
    ],
)
def test_split_axis(size: int, parts: int, expected: list[tuple[int, int]]) -> None:
    assert split_axis(size, parts) == tuple(Interval(a, b) for a, b in expected)


@pytest.mark.parametrize(
    ("window", "out", "size", "real", "pads"),
    [
        # 3x3, stride 1, pad 1 on 13: first tile [0,4) wants [-1,5) -> real [0,5), pads (1,0).
        (AxisWindow(3, 1, 1, 1, 1), (0, 4), 13, (0, 5), (1, 0)),
        # An interior tile [4,7) wants [3,8): no pad.
        (AxisWindow(3, 1, 1, 1, 1), (4, 7), 13, (3, 8), (0, 0)),
        # The last tile [10,13) wants [9,14) -> real [9,13), pads (0,1).
        (AxisWindow(3, 1, 1, 1, 1), (10, 13), 13, (9, 13), (0, 1)),
        # Stride 2, pad 1, 13 -> 7: outputs [3,7) want [5, 6*2-1+3=14) -> [5,13), pads (0,1).
        (AxisWindow(3, 2, 1, 1, 1), (3, 7), 13, (5, 13), (0, 1)),
        # Dilation 2 (span 5), pad 2: outputs [0,2) want [-2, 4) -> [0,4), pads (2,0).
        (AxisWindow(3, 1, 2, 2, 2), (0, 2), 9, (0, 4), (2, 0)),
        # Asymmetric pads (0, 2), kernel 3, stride 3 on 7 (3 outputs): the last wants [6, 9).
        (AxisWindow(3, 3, 1, 0, 2), (2, 3), 7, (6, 7), (0, 2)),
        # ceil_mode overhang: k 3, s 2, no pad on 8 gives 4 outputs; the last wants [6, 9).
        (AxisWindow(3, 2, 1, 0, 0), (3, 4), 8, (6, 8), (0, 1)),
        # SpaceToDepth b=2: outputs [2,5) read [4,10).
        (AxisWindow(2, 2), (2, 5), 11, (4, 10), (0, 0)),
        # Pad by (2, 1): outputs [0,3) of 12 read [0,1) with pads (2, 0).
        (AxisWindow(1, 1, 1, 2, 1), (0, 3), 9, (0, 1), (2, 0)),
        # A negative (cropping) begin pad of -1: output [0, 2) reads input [1, 3).
        (AxisWindow(1, 1, 1, -1, 0), (0, 2), 5, (1, 3), (0, 0)),
    ],
)
def test_window_backward_step(window, out, size, real, pads) -> None:
    got_real, got_pads, computed = window.backward(Interval(*out), size)
    assert computed == Interval(*out)
    assert got_real == Interval(*real)
    assert got_pads == pads
    # The tile copy computes exactly the asked outputs: wanted size = (n_out - 1)·s + span.
    wanted = got_real.size + sum(got_pads)
    assert wanted == (out[1] - out[0] - 1) * window.stride + window.span


def test_window_backward_step_raises_on_a_tile_that_reads_only_padding() -> None:
    # Pad by 3 at the top: outputs [0, 2) are wholly padding.
    with pytest.raises(EmptyRegionError, match="reads no input pixel"):
        AxisWindow(1, 1, 1, 3, 0).backward(Interval(0, 2), 5)


def _prepared_block(specs, shape, opset=17, tail=None, fused=-1):
    model = build(specs, shape, tail=tail, opset=opset)
    prep = prepare(model)
    cand = prep.candidates[fused]
    return model, prep, make_block(prep.graph, prep.prefix, cand)


def test_backward_through_a_conv_chain() -> None:
    # Graph: x(13) -> conv0 3x3 s1 p1 -> conv1 3x3 s2 p1 -> y(7)
    # Should give, for F rows [0, 3): conv1 wants conv0 rows [0·2 − 1, 2·2 − 1 + 3) =
    # [-1, 6), so reads [0, 6) with pads (1, 0); conv0 computes [0, 6) and reads x [0, 7)
    # with pads (1, 0).
    _, _, block = _prepared_block(
        [conv(4, 3, 1, 1, (1, 1, 1, 1)), conv(4, 3, 2, 1, (1, 1, 1, 1))], (1, 3, 13, 13)
    )
    regions = backward(block, 0, Interval(0, 3))
    assert regions.out == (Interval(0, 6), Interval(0, 3))
    # Weight and bias slots are not tiled: their reads are None.
    assert regions.reads == ((Interval(0, 7), None, None), (Interval(0, 6), None, None))
    assert regions.pads == ((1, 0), (1, 0))
    assert regions.tensors[INPUT] == Interval(0, 7)
    # And for the last rows [5, 7): conv1 wants [9, 14) -> reads [9, 13), pads (0, 1);
    # conv0 computes [9, 13) and reads x [8, 13), pads (0, 1).
    regions = backward(block, 0, Interval(5, 7))
    assert regions.out == (Interval(9, 13), Interval(5, 7))
    assert regions.pads == ((0, 1), (0, 1))
    assert regions.tensors[INPUT] == Interval(8, 13)


def test_backward_takes_the_union_where_a_tensor_has_two_consumers() -> None:
    # Graph: x -> conv0 (3x3, p1) -> a;  y = Add(x, a)
    # Should give, for F [0, 4): Add reads x [0, 4) and a [0, 4); conv0 reads x [0, 5);
    # x is sliced to the union [0, 5) and the Add gets a crop of it.
    _, _, block = _prepared_block([residual([conv(3, 3, 1, 1, (1, 1, 1, 1))])], (1, 3, 13, 13))
    regions = backward(block, 1, Interval(0, 4))
    add = next(i for i, n in enumerate(block.nodes) if n.op == "Add")
    assert regions.reads[add] == (Interval(0, 4), Interval(0, 4))
    assert regions.tensors[INPUT] == Interval(0, 5)


def test_backward_of_depth_to_space_widens_to_whole_blocks() -> None:
    # Graph: x (8ch, 5x7) -> DepthToSpace b=2 -> y (2ch, 10x14)
    # Should give: F rows [3, 7) need input rows [1, 4), so the copy computes rows [2, 8).
    _, _, block = _prepared_block([d2s(2)], (1, 8, 5, 7))
    regions = backward(block, 0, Interval(3, 7))
    assert regions.reads[0] == (Interval(1, 4),)
    assert regions.out[0] == Interval(2, 8)
    assert regions.tensors[OUTPUT] == Interval(2, 8)


def test_make_tiling_refuses_a_grid_larger_than_f() -> None:
    _, _, block = _prepared_block([conv(2, 3, 2, 1, (1, 1, 1, 1))], (1, 2, 7, 9))  # F 4x5
    assert make_tiling(block, (4, 5)).num_paths == 20
    with pytest.raises(ValueError, match="does not fit"):
        make_tiling(block, (5, 1))
    with pytest.raises(ValueError, match="does not fit"):
        make_tiling(block, (1, 0))


def test_tiling_at_unequal_bounds_covers_f_once() -> None:
    # Graph: x (1x2x7x9) -> conv 3x3 s2 p1 -> y (4x5)
    # Should give: rows [0, 1), [1, 4) and columns [0, 3), [3, 4), [4, 5); every tile's
    # region of F is its row's × its column's, and the tiles cover F exactly once.
    _, _, block = _prepared_block([conv(2, 3, 2, 1, (1, 1, 1, 1))], (1, 2, 7, 9))
    tiling = tiling_at(block, (0, 1, 4), (0, 3, 4, 5))
    assert tiling.grid == (2, 3) and tiling.num_paths == 6
    assert tiling.bounds == ((0, 1, 4), (0, 3, 4, 5)) and not tiling.uniform
    covered = np.zeros((4, 5), int)
    for p in range(tiling.num_paths):
        row, col = tiling.axes(p)
        covered[row.fused.start : row.fused.stop, col.fused.start : col.fused.stop] += 1
    assert (covered == 1).all()
    # The last row [1, 4) of F reads x rows [1·2 − 1, 3·2 − 1 + 3) = [1, 8) ∩ [0, 7).
    assert tiling.rows[1].tensors[INPUT] == Interval(1, 7)
    assert tiling.rows[1].pads[0] == (0, 1)


def test_tiling_at_uniform_bounds_is_make_tiling_and_shares_the_memo() -> None:
    _, _, block = _prepared_block([conv(2, 3, 2, 1, (1, 1, 1, 1))], (1, 2, 7, 9))
    assert uniform_bounds(5, 3) == (0, 2, 4, 5)
    cache = {}
    uniform = make_tiling(block, (2, 3), cache)
    assert uniform.uniform and uniform.bounds == (uniform_bounds(4, 2), uniform_bounds(5, 3))
    again = tiling_at(block, (0, 2, 4), (0, 2, 4, 5), cache)
    assert again.rows == uniform.rows and again.cols == uniform.cols  # the same memo entries
    moved = tiling_at(block, (0, 3, 4), (0, 2, 4, 5), cache)
    assert moved.cols == uniform.cols and moved.rows[0] is not uniform.rows[0]


@pytest.mark.parametrize(
    ("rows", "cols"),
    [
        ((1, 4), (0, 5)),
        ((0, 4), (0, 5, 5)),
        ((0, 3), (0, 5)),
        ((0, 2, 1, 4), (0, 5)),
        ((0,), (0, 5)),
    ],
)
def test_tiling_at_refuses_bounds_that_do_not_cut_f(rows, cols) -> None:
    _, _, block = _prepared_block([conv(2, 3, 2, 1, (1, 1, 1, 1))], (1, 2, 7, 9))  # F 4x5
    with pytest.raises(ValueError, match="do not cut"):
        tiling_at(block, rows, cols)


def test_make_tiling_raises_empty_region_for_a_tile_inside_the_padding() -> None:
    # Graph: x (1x1x3x3) -> Pad (3 rows on top) -> y (6x3). With 2 rows of tiles the first
    # tile, rows [0, 3), is all padding.
    _, _, block = _prepared_block([pad((3, 0, 0, 0))], (1, 1, 3, 3))
    assert make_tiling(block, (1, 3)).num_paths == 3
    with pytest.raises(EmptyRegionError):
        make_tiling(block, (2, 1))


def test_make_tiling_raises_empty_region_when_f_reads_only_padding() -> None:
    # Graph: x (1x1x1x3) -> Pad (2 rows on top) -> 3x3 -> Conv 1x1 stride 3 -> y (1x1)
    # The one output row reads padded row 0, which is padding: F does not depend on x along
    # H, so even the 1x1 grid has no input region.
    _, _, block = _prepared_block([pad((2, 0, 0, 0)), conv(1, 1, 3)], (1, 1, 1, 3))
    assert block.fused_shape[2:] == (1, 1)
    with pytest.raises(EmptyRegionError):
        make_tiling(block, (1, 1))


# --------------------------------------------------------------------------- against ORT

# (specs, input shape, opset): every supported op with odd/prime sizes, strides, dilations,
# asymmetric pads, ceil_mode with both count_include_pad values, and batch 1 and 2.
WINDOW_CASES = {
    "conv_3x3_p1": ([conv(4, 3, 1, 1, (1, 1, 1, 1))], (1, 3, 13, 17), 17),
    "conv_s2_batch2": ([conv(4, 3, 2, 1, (1, 1, 1, 1))], (2, 3, 13, 13), 17),
    "conv_asym": ([conv(4, (5, 3), (2, 3), 1, (2, 0, 1, 2))], (1, 3, 23, 17), 17),
    "conv_dilated": ([conv(4, 3, 1, 2, (2, 1, 0, 2))], (1, 2, 17, 13), 17),
    "conv_dilated_s2": ([conv(3, 3, 2, (2, 3), (0, 3, 4, 1))], (1, 2, 31, 23), 17),
    "conv_group2": ([conv(6, 3, 1, 1, (1, 1, 1, 1), group=2)], (1, 4, 13, 13), 17),
    "conv_depthwise": ([conv(4, 3, 2, 1, (1, 1, 1, 1), group="dw")], (2, 4, 17, 17), 17),
    "conv_depthwise_x2": ([conv(8, 3, 1, 1, (0, 1, 2, 1), group="dw")], (1, 4, 13, 11), 17),
    "conv_1x1_nobias": ([conv(3, 1, bias=False)], (1, 3, 7, 7), 17),
    "conv_k4_s3_nopad": ([conv(4, 4, 3)], (1, 2, 23, 23), 17),
    "conv_same_upper": ([conv(4, 4, 2, auto_pad="SAME_UPPER")], (1, 2, 13, 17), 17),
    "conv_same_lower": ([conv(4, (4, 3), 2, auto_pad="SAME_LOWER")], (1, 2, 13, 17), 17),
    "conv_valid": ([conv(4, 3, 2, auto_pad="VALID")], (1, 2, 13, 17), 17),
    "conv_opset11": ([conv(4, 3, 2, 1, (1, 0, 0, 1))], (1, 2, 13, 11), 11),
    "maxpool_3s2_p1": ([maxpool(3, 2, pads=(1, 1, 1, 1))], (1, 2, 13, 13), 17),
    "maxpool_ceil": ([maxpool(3, 2, ceil=True)], (2, 2, 8, 12), 17),
    "maxpool_ceil_asym": ([maxpool(2, 2, pads=(1, 0, 0, 1), ceil=True)], (1, 2, 12, 17), 17),
    "maxpool_ceil_dilated": ([maxpool(3, 2, 2, (2, 1, 1, 2), ceil=True)], (1, 2, 17, 23), 17),
    "maxpool_ceil_s3": ([maxpool(3, 3, pads=(1, 0, 0, 1), ceil=True)], (1, 2, 13, 16), 17),
    "maxpool_same_lower": ([maxpool(2, 2, auto_pad="SAME_LOWER")], (1, 2, 13, 13), 17),
    "maxpool_opset11": ([maxpool(3, 2, pads=(1, 0, 1, 1), ceil=True)], (1, 2, 13, 11), 11),
    "avgpool_p1_cip0": ([avgpool(3, 2, (1, 1, 1, 1))], (1, 2, 13, 13), 17),
    "avgpool_p1_cip1": ([avgpool(3, 2, (1, 1, 1, 1), cip=1)], (2, 2, 13, 13), 17),
    "avgpool_ceil_cip0": ([avgpool(3, 2, ceil=True)], (1, 2, 8, 12), 17),
    "avgpool_ceil_cip1": ([avgpool(3, 2, ceil=True, cip=1)], (1, 2, 8, 12), 17),
    # Overhang past the genuine pad: the last window covers input, pad and overhang.
    "avgpool_ceil_pad_cip1": ([avgpool(3, 2, (1, 1, 1, 1), True, 1)], (1, 2, 12, 12), 17),
    "avgpool_ceil_pad_cip0": ([avgpool(3, 2, (1, 1, 1, 1), True, 0)], (1, 2, 12, 12), 17),
    "avgpool_ceil_asym_cip1": ([avgpool(2, 2, (0, 1, 1, 0), True, 1)], (1, 2, 13, 17), 17),
    "avgpool_ceil_s3_cip1": ([avgpool(3, 3, (1, 0, 0, 1), True, 1)], (2, 2, 13, 16), 17),
    "avgpool_ceil_s3_cip0": ([avgpool(3, 3, (1, 0, 0, 1), True, 0)], (1, 2, 13, 16), 17),
    "avgpool_dilated_cip1": ([avgpool(2, 2, (1, 0, 1, 1), True, 1, d=2)], (1, 2, 13, 17), 21),
    "avgpool_same_upper_cip1": ([avgpool(3, 2, cip=1, auto_pad="SAME_UPPER")], (1, 2, 13, 12), 17),
    "avgpool_opset11": ([avgpool(3, 2, (1, 1, 1, 1), True, 1)], (1, 2, 12, 13), 11),
    "pad_asym": ([pad((1, 0, 2, 3))], (1, 2, 7, 11), 17),
    "pad_value": ([pad((2, 2, 0, 1), 0.5)], (2, 2, 13, 7), 17),
    "pad_axes": ([pad((0, 1, 2, 0), 0.25, axes=True)], (1, 2, 7, 13), 21),
    "pad_negative": ([pad((-1, 0, 1, -2))], (1, 2, 7, 11), 17),
    "pad_opset11": ([pad((1, 2, 0, 1))], (1, 2, 7, 11), 11),
    "pad_opset10": ([pad((1, 2, 0, 1), 0.25)], (1, 2, 7, 11), 10),
    "space_to_depth": ([s2d(2)], (1, 2, 14, 18), 17),
    "space_to_depth_3": ([s2d(3)], (2, 1, 15, 21), 13),
    "depth_to_space": ([d2s(2)], (1, 8, 7, 9), 17),
    "depth_to_space_crd": ([d2s(2, "CRD")], (2, 8, 5, 7), 17),
    "depth_to_space_3": ([d2s(3)], (1, 9, 5, 7), 11),
}

UNARY = [
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
    "Selu", "Softplus", "Identity", "Dropout", "BatchNormalization", "LRN", "Abs", "Neg", "Exp",
    "Erf", "Mish", "Softsign", "Celu", "ThresholdedRelu", "Gelu", "Floor", "Ceil", "Round",
    "Sign",
]  # fmt: skip
POINTWISE_CASES = {f"unary_{op}": ([act(op)], (2, 3, 7, 11), 21) for op in UNARY}
POINTWISE_CASES.update(
    {
        f"const_{op}_{shape}": ([const_op(op, shape)], (1, 3, 7, 13), 17)
        for op, shape in [
            ("Add", "channel"),
            ("Sub", "chw"),
            ("Mul", "scalar"),
            ("Div", "channel"),
            ("Max", "scalar"),
            ("Min", "channel"),
            ("Pow", "scalar"),
            ("Sum", "chw"),
        ]
    }
)
POINTWISE_CASES["clip_opset11"] = ([act("Clip")], (1, 2, 7, 7), 11)

# Multi-node blocks: binary ops of two tiled tensors, channel Concat and Split.
DAG_CASES = {
    "residual_add": ([residual([conv(3, 3, 1, 1, (1, 1, 1, 1))])], (1, 3, 13, 11), 17),
    "residual_mul_asym": (
        [residual([conv(2, (3, 2), 1, 1, (2, 0, 0, 1))], "Mul")],
        (2, 2, 7, 9),
        17,
    ),
    "residual_max": ([residual([maxpool(3, 1, pads=(1, 1, 1, 1))], "Max")], (1, 2, 7, 9), 17),
    "residual_sub_pad": ([residual([pad((1, 0, 0, 1)), conv(2, 2)], "Sub")], (1, 2, 11, 7), 17),
    "concat": (
        [concat([conv(2, 3, 1, 1, (1, 1, 1, 1))], [maxpool(3, 1, pads=(1, 1, 1, 1))])],
        (1, 3, 13, 13),
        17,
    ),
    "concat_identity": (
        [concat([], [conv(3, 1)], [conv(2, 3, 1, 2, (2, 2, 2, 2))])],
        (1, 2, 9, 7),
        17,
    ),
    "split": ([split([1, 2], [conv(2, 3, 1, 1, (1, 1, 1, 1))], [])], (1, 3, 11, 13), 17),
    "split_opset11": ([split([2, 2], [], [avgpool(3, 1, (1, 1, 1, 1), cip=1)])], (2, 4, 7, 9), 11),
    "pad_opset10_then_conv": ([pad((2, 0, 1, 1), 0.5), conv(2, 3)], (1, 2, 7, 9), 10),
    "pad_then_conv": ([pad((1, 1, 0, 2), 0.5), conv(2, 3, 2)], (1, 2, 13, 13), 17),
    "s2d_then_d2s": ([s2d(2), conv(8, 3, 1, 1, (1, 1, 1, 1)), d2s(2)], (1, 2, 10, 14), 17),
}


def _single_node_block(case):
    specs, shape, opset = case
    model, prep, block = _prepared_block(specs, shape, opset)
    assert len(block.nodes) == 1, [n.name for n in block.nodes]
    return model, prep, block


def _intervals(size: int, rng: np.random.Generator, count: int = 5) -> list[Interval]:
    fixed = [Interval(0, size), Interval(0, 1), Interval(size - 1, size)]
    starts = rng.integers(0, size, count)
    return fixed + [Interval(int(a), int(rng.integers(a + 1, size + 1))) for a in starts]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _tile_copy(model: onnx.ModelProto, pads_h: tuple[int, int], pads_w: tuple[int, int]):
    """The one node of `model` as a tile copy: the tile pads in place of the original ones.

    docs/design.md §2's ceil_mode rule: a side whose tile pad exceeds the original pad ends in a
    ceil_mode overhang; that side keeps the original pad and the copy keeps ceil_mode, which
    reproduces the original windows (and what AveragePool counts). Elsewhere ceil_mode is off.
    """
    (node,) = model.graph.node
    attrs = _attrs(node)
    inits = {i.name: i for i in model.graph.initializer}
    inputs = list(node.input)
    pads = [pads_h[0], pads_w[0], pads_h[1], pads_w[1]]
    if node.op_type in ("Conv", "MaxPool", "AveragePool"):
        original = attrs.get("pads", [0, 0, 0, 0])
        attrs.pop("auto_pad", None)
        overhang = [p > o for p, o in zip(pads, original, strict=True)]
        if node.op_type != "Conv":
            attrs["ceil_mode"] = int(any(overhang))
            pads = [o if v else p for p, o, v in zip(pads, original, overhang, strict=True)]
        attrs["pads"] = pads
    elif node.op_type == "Pad" and "pads" in attrs:  # Pad-2
        attrs["pads"] = [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]
    elif node.op_type == "Pad":
        inits["tile_pads"] = numpy_helper.from_array(
            np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]], np.int64), "tile_pads"
        )
        inputs = [inputs[0], "tile_pads", *inputs[2:3]]
    nodes = [helper.make_node(node.op_type, inputs, list(node.output), **attrs)]
    used = set(inputs)
    graph = helper.make_graph(
        nodes,
        "tile",
        [helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, None)],
        initializer=[t for name, t in inits.items() if name in used],
    )
    tile = helper.make_model(graph, opset_imports=model.opset_import)
    tile.ir_version = model.ir_version
    return tile


def _slice(array: np.ndarray, rows: Interval, cols: Interval) -> np.ndarray:
    return array[:, :, rows.start : rows.stop, cols.start : cols.stop]


@pytest.mark.parametrize("case", WINDOW_CASES.values(), ids=WINDOW_CASES.keys())
def test_window_region_math_against_onnxruntime(case) -> None:
    # A tile copy of the op, given the input region and pads `backward` computes, must give
    # exactly the asked slice of the whole op's output.
    model, prep, block = _single_node_block(case)
    x = random_input(model, seed=1)
    full = run(prep.model, x)[OUTPUT]
    assert np.array_equal(full, run(model, x)[OUTPUT])  # normalize changed nothing numeric
    rng = np.random.default_rng(7)
    out_h, out_w = full.shape[2:]
    checked = 0
    for rows, cols in zip(_intervals(out_h, rng), _intervals(out_w, rng), strict=True):
        try:
            rh, rw = backward(block, 0, rows), backward(block, 1, cols)
        except EmptyRegionError:
            assert block.nodes[0].op == "Pad", (rows, cols)
            continue
        # The copy computes what was asked (DepthToSpace may compute whole blocks around it).
        assert rh.out[0].start <= rows.start and rows.stop <= rh.out[0].stop
        assert rw.out[0].start <= cols.start and cols.stop <= rw.out[0].stop
        x_tile = _slice(x[INPUT], rh.tensors[INPUT], rw.tensors[INPUT])
        tile = _tile_copy(prep.model, rh.pads[0], rw.pads[0])
        got = run(tile, {INPUT: x_tile})[OUTPUT]
        want = _slice(full, rh.out[0], rw.out[0])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{rows} {cols}")
        checked += 1
    assert checked >= 3


def _real_pixels(block, axis: int, size: int) -> list[int]:
    """The pixels of F along `axis` whose one-pixel tile reads some real input pixel."""
    real = []
    for i in range(size):
        try:
            backward(block, axis, Interval(i, i + 1))
        except EmptyRegionError:
            continue
        real.append(i)
    return real


def _random_partition(size: int, real: list[int], rng: np.random.Generator):
    """A random partition of [0, size) into 1 to 4 parts, each holding a pixel of `real`.

    A part cut at `real` pixels always holds one, so no tile lies wholly in a Pad's padding
    and every partition drawn is checked. (Tiles of padding alone are refused; the test
    checks that too.)
    """
    parts = int(rng.integers(1, min(len(real), 4) + 1))
    starts = sorted(int(c) for c in rng.choice(real[1:], parts - 1, replace=False))
    bounds = [0, *starts, size]
    return tuple(Interval(a, b) for a, b in itertools.pairwise(bounds))


PARTITIONS = 3  # random partitions checked per case


ALL_CASES = {**WINDOW_CASES, **POINTWISE_CASES, **DAG_CASES}


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_tiles_of_a_random_partition_match_onnxruntime(case) -> None:
    # Graph: x -> op(s) -> y, tiled by tile_graph over a random (unbalanced) partition of y.
    # Should become: every tile's copy of y equals its slice of the whole y, and so does the
    # fused y.
    specs, shape, opset = case
    model, prep, block = _prepared_block(specs, shape, opset)
    x = random_input(model, seed=2)
    full = run(prep.model, x)[OUTPUT]
    rng = np.random.default_rng(sum(map(ord, str(specs))))
    real = [_real_pixels(block, axis, full.shape[2 + axis]) for axis in (0, 1)]
    for axis, pixels in enumerate(real):
        if pixels != list(range(full.shape[2 + axis])):  # a Pad's padding alone is refused
            assert any(n.op == "Pad" for n in block.nodes)
            alone = next(i for i in range(full.shape[2 + axis]) if i not in pixels)
            with pytest.raises(EmptyRegionError):
                backward(block, axis, Interval(alone, alone + 1))
    checked = 0
    for _ in range(PARTITIONS):
        row_parts = _random_partition(full.shape[2], real[0], rng)
        col_parts = _random_partition(full.shape[3], real[1], rng)
        rows = tuple(backward(block, 0, iv) for iv in row_parts)
        cols = tuple(backward(block, 1, iv) for iv in col_parts)
        tiling = Tiling(block, (len(rows), len(cols)), rows, cols)
        tiled = export(tile_graph(gs.import_onnx(prep.model), tiling).graph)
        paths = [(r, c) for r in range(len(rows)) for c in range(len(cols))]
        names = [f"fl_p{p}_{OUTPUT}" for p in range(len(paths))]
        got = run(tiled, x, extra=names)
        np.testing.assert_allclose(got[OUTPUT], full, rtol=1e-6, atol=1e-6)
        for name, (r, c) in zip(names, paths, strict=True):
            want = _slice(full, rows[r].tensors[OUTPUT], cols[c].tensors[OUTPUT])
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-6, err_msg=name)
        checked += 1
    assert checked == PARTITIONS
