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
import pytest
from graphs import OUTPUT, build, compile_fl, conv, lppool, prepare, random_input, run

from flcompile.compile import CompileOptions, compile_model
from flcompile.costs import LinkModel
from flcompile.errors import InternalError
from flcompile.passes.ops import AxisWindow, Interval, LocalOp, OpRule, register, rule_for
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
