"""Tests for flcompile.passes.ops: the op-rule registry and the ops added as one rule entry each.

For LpPool, Resize and Upsample: the classification (local, or refused with the reason), the
receptive regions worked out by hand, and small models tiled at 2×2 and 3×3, split at every
cut and checked in onnxruntime (edge(device(x)) equals the model), through `tile_and_split`
and through `compile_model`, which verifies the plan itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from graphs import (
    OUTPUT,
    build,
    compile_fl,
    conv,
    lppool,
    prepare,
    random_input,
    resize,
    run,
    upsample,
)

from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import LinkModel
from flcompile.errors import InternalError
from flcompile.passes.local_ops import classify
from flcompile.passes.ops import (
    AxisRepeat,
    AxisWindow,
    Interval,
    LocalOp,
    OpRule,
    register,
    rule_for,
)
from flcompile.passes.receptive_field import make_block, make_tiling
from flcompile.search import SearchOptions

GRIDS = [(2, 2), (3, 3)]


def test_an_op_has_one_rule_and_cannot_be_registered_twice() -> None:
    assert rule_for("Conv") is not None and rule_for("Reshape") is None
    with pytest.raises(InternalError, match="Relu already has a rule"):
        register(OpRule(), "Relu")


def block_of(model: onnx.ModelProto, fused: str):
    prep = prepare(model)
    candidate = next(c for c in prep.candidates if c.tensor == fused)
    return prep, make_block(prep.graph, prep.prefix, candidate)


def check_every_cut(model: onnx.ModelProto, fused: str, grid: tuple[int, int]) -> None:
    """Tile at `grid`, split at every cut k = 0..L, and compare edge(device(x)) with the model."""
    feeds = random_input(model)
    want = run(model, feeds)[OUTPUT]
    prep, block = block_of(model, fused)
    for cut in range(len(block.nodes) + 1):
        compiled = compile_fl(prep, fused, grid, cut)
        got = run(compiled.edge, run(compiled.device, feeds))[OUTPUT]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"cut {cut}")


def check_compiles(model: onnx.ModelProto, fused: str, grid: tuple[int, int], tmp: Path) -> None:
    """The real pipeline, fused at `fused` on `grid`: it verifies, and so does a rerun here."""
    source = tmp / "model.onnx"
    onnx.save_model(model, str(source))
    options = CompileOptions(
        link=LinkModel(rate_MBps=1.8), search=SearchOptions(grid=grid, fuse_at=fused), runs=0
    )
    result = compile_model(str(source), tmp / "out", options)
    assert result.verify is not None and result.verify.passed
    assert result.plan["fused"]["tensor"] == fused
    assert result.plan["fused"]["grid"] == list(grid)
    feeds = random_input(model, seed=1)
    device = onnx.load(str(tmp / "out" / "device.onnx"))
    edge = onnx.load(str(tmp / "out" / "edge.onnx"))
    got = run(edge, run(device, feeds))[OUTPUT]
    np.testing.assert_allclose(got, run(model, feeds)[OUTPUT], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- LpPool


def lppool_model(opset: int = 17) -> onnx.ModelProto:
    # Graph: x (12×12) -> conv0 3×3 pad 1 -> lppool1 3×3 s 2 pad 1 (6×6) -> F -> GAP tail.
    return build([conv(4, 3, pads=(1, 1, 1, 1)), lppool(3, 2, (1, 1, 1, 1))], (1, 3, 12, 12),
                 opset=opset)  # fmt: skip


def test_lppool_is_a_local_window_op() -> None:
    prep, block = block_of(lppool_model(), "lppool1_out")
    window = AxisWindow(3, 2, 1, 1, 1)
    assert prep.prefix.ops["lppool1"] == LocalOp(window, window)
    # F rows [0, 3) read conv rows [0, 6) with pads (1, 0); the conv reads x rows [0, 7).
    tiling = make_tiling(block, (2, 1))
    top, bottom = tiling.rows
    assert top.reads[1] == (Interval(0, 6),) and top.pads[1] == (1, 0)
    assert top.reads[0][0] == Interval(0, 7) and top.pads[0] == (1, 0)
    # F rows [3, 6) read conv rows [5, 12) (no pad: 5·2 − 1 + 3 = 12 fits); x rows [4, 12).
    assert bottom.reads[1] == (Interval(5, 12),) and bottom.pads[1] == (0, 0)
    assert bottom.reads[0][0] == Interval(4, 12) and bottom.pads[0] == (0, 1)


def test_lppool_with_ceil_mode_is_refused() -> None:
    model = lppool_model(opset=18)
    pool = next(n for n in model.graph.node if n.op_type == "LpPool")
    pool.attribute.append(onnx.helper.make_attribute("ceil_mode", 1))
    prep = prepare(model)
    assert "lppool1" not in prep.prefix.nodes
    assert prep.prefix.stops == ("lppool1 (LpPool): LpPool with ceil_mode=1 is not supported",)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_lppool_tiles_split_at_every_cut(grid) -> None:
    check_every_cut(lppool_model(), "lppool1_out", grid)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_lppool_compiles_and_verifies(grid, tmp_path: Path) -> None:
    check_compiles(lppool_model(), "lppool1_out", grid, tmp_path)


# --------------------------------------------------------------------------- Resize, Upsample


def upsampling_model(layer: dict, opset: int = 17, size: int = 8) -> onnx.ModelProto:
    # Graph: x (size²) -> conv0 3×3 pad 1 -> <layer> (×s) -> conv2 3×3 pad 1 -> F -> GAP tail.
    specs = [conv(4, 3, pads=(1, 1, 1, 1)), layer, conv(5, 3, pads=(1, 1, 1, 1))]
    return build(specs, (1, 3, size, size), opset=opset)


UPSAMPLINGS = {
    "resize_scales": (resize((2, 2)), 17, "resize1"),
    "resize_2x3": (resize((2, 3)), 13, "resize1"),
    "resize_sizes_opset11": (resize((3, 2), by_sizes=True), 11, "resize1"),
    "upsample_opset9": (upsample((2, 2)), 9, "upsample1"),
    "upsample_opset9_3x2": (upsample((3, 2)), 9, "upsample1"),
}


@pytest.mark.parametrize(("layer", "opset", "name"), UPSAMPLINGS.values(), ids=UPSAMPLINGS.keys())
def test_nearest_upsampling_by_integer_scales_is_local(layer, opset, name) -> None:
    prep = prepare(upsampling_model(layer, opset))
    sh, sw = layer["scales"]
    assert prep.prefix.ops[name] == LocalOp(AxisRepeat(sh), AxisRepeat(sw))
    assert prep.prefix.nodes == ("conv0", name, "conv2")


REFUSED = {
    "linear": (
        resize(mode="linear"),
        17,
        "Resize with mode 'linear' (only 'nearest' is supported)",
    ),
    "half_pixel": (
        resize(coordinate_transformation_mode="half_pixel"),
        17,
        "Resize with coordinate_transformation_mode 'half_pixel' (only 'asymmetric' is supported)",
    ),
    "round_prefer_floor": (
        resize((3, 3), nearest_mode="round_prefer_floor"),
        17,
        "Resize with nearest_mode 'round_prefer_floor' (only 'floor' is supported)",
    ),
    "upsample_linear": (upsample(mode="linear"), 9, "Upsample mode 'linear' interpolates"),
}


@pytest.mark.parametrize(("layer", "opset", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_other_upsampling_ends_the_prefix_with_its_reason(layer, opset, reason) -> None:
    prep = prepare(upsampling_model(layer, opset))
    assert prep.prefix.nodes == ("conv0",)
    op = "Upsample" if layer["op"] == "upsample" else "Resize"
    assert f"{layer['op']}1 ({op}): {reason}" in prep.prefix.stops


def _resize_node(inputs: list[gs.Tensor], out_hw: tuple[int, int]) -> gs.Node:
    x = gs.Variable("x", np.float32, (1, 2, 4, 4))
    y = gs.Variable("y", np.float32, (1, 2, *out_hw))
    attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return gs.Node("Resize", attrs=attrs, inputs=[x, *inputs], outputs=[y])


def test_scales_the_rule_reads_and_refuses() -> None:
    def scales(values) -> gs.Constant:
        return gs.Constant("scales", np.array(values, np.float32))

    def is_x(t: gs.Tensor) -> bool:
        return t.name == "x"

    fractional = _resize_node([gs.Variable.empty(), scales([1, 1, 1.5, 1.5])], (6, 6))
    assert classify(fractional, is_x) == (
        "its scales [1.0, 1.0, 1.5, 1.5] are not [1, 1, s_h, s_w] with integers s >= 1"
    )
    channels = _resize_node([gs.Variable.empty(), scales([1, 2, 2, 2])], (8, 8))
    assert "are not [1, 1, s_h, s_w]" in classify(channels, is_x)
    upsample_7 = _resize_node([], (8, 12))
    upsample_7.op, upsample_7.attrs = "Upsample", {"mode": "nearest", "scales": [1.0, 1, 2, 3]}
    assert classify(upsample_7, is_x) == LocalOp(AxisRepeat(2), AxisRepeat(3))
    resize_10 = _resize_node([scales([1, 1, 2, 2])], (8, 8))
    assert classify(resize_10, is_x) == (
        "Resize-10 rounds to the nearest pixel, not down (use opset >= 11)"
    )


def test_resize_regions_repeat_input_rows() -> None:
    # conv0 (8) -> resize1 ×2 (16) -> conv2 (16) = F; 3 tile rows of F: [0, 6), [6, 11), [11, 16).
    _, block = block_of(upsampling_model(resize((2, 2))), "conv2_out")
    rows = make_tiling(block, (3, 1)).rows
    # conv2 reads resize rows [0, 7) (pads (1, 0)); resize reads x rows [0, 4) and so computes
    # [0, 8); conv0 computes [0, 4) from [0, 5) with pads (1, 0).
    assert rows[0].reads[2][0] == Interval(0, 7) and rows[0].pads[2] == (1, 0)
    assert rows[0].reads[1][0] == Interval(0, 4) and rows[0].out[1] == Interval(0, 8)
    assert rows[0].reads[0][0] == Interval(0, 5) and rows[0].pads[0] == (1, 0)
    # F [6, 11): conv2 reads [5, 12); resize reads [2, 6), computes [4, 12); conv0 reads [1, 7).
    assert rows[1].reads[2][0] == Interval(5, 12) and rows[1].pads[2] == (0, 0)
    assert rows[1].reads[1][0] == Interval(2, 6) and rows[1].out[1] == Interval(4, 12)
    assert rows[1].reads[0][0] == Interval(1, 7) and rows[1].pads[0] == (0, 0)
    # F [11, 16): conv2 reads [10, 16) pads (0, 1); resize reads [5, 8); conv0 reads [4, 8).
    assert rows[2].reads[2][0] == Interval(10, 16) and rows[2].pads[2] == (0, 1)
    assert rows[2].reads[1][0] == Interval(5, 8) and rows[2].out[1] == Interval(10, 16)
    assert rows[2].reads[0][0] == Interval(4, 8) and rows[2].pads[0] == (0, 1)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
@pytest.mark.parametrize(("layer", "opset", "name"), UPSAMPLINGS.values(), ids=UPSAMPLINGS.keys())
def test_upsampling_tiles_split_at_every_cut(layer, opset, name, grid) -> None:
    check_every_cut(upsampling_model(layer, opset), "conv2_out", grid)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_resize_compiles_and_verifies(grid, tmp_path: Path) -> None:
    check_compiles(upsampling_model(resize((2, 2))), "conv2_out", grid, tmp_path)


def test_upsample_compiles_and_verifies(tmp_path: Path) -> None:
    check_compiles(upsampling_model(upsample((2, 2)), opset=9), "conv2_out", (3, 3), tmp_path)
