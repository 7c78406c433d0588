"""Tests for flcompile.passes.tile: the rewrite of the block into P paths and a Concat fuse."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from graphs import (
    INPUT,
    OUTPUT,
    act,
    assert_unique_names,
    avgpool,
    build,
    compile_fl,
    concat,
    conv,
    d2s,
    export,
    initializer_bytes,
    maxpool,
    pad,
    prepare,
    random_input,
    residual,
    run,
)

from flcompile.errors import InternalError
from flcompile.passes.receptive_field import make_block, make_tiling
from flcompile.passes.tile import tile_graph, tile_tensor_name
from flcompile.verify import compare


def conv_stack(shape=(1, 3, 17, 13), channels=4, kernel=3):
    # Graph: x -> conv0 (3x3, p1) -> relu1 -> conv2 (s2, p1) -> relu3 -> GAP -> Flatten -> Gemm
    p = kernel // 2
    return build(
        [
            conv(channels, kernel, 1, 1, (p, p, p, p)),
            act("Relu"),
            conv(channels, kernel, 2, 1, (p, p, p, p)),
            act("Relu"),
        ],
        shape,
    )


F = "relu3_out"
BLOCK = ("conv0", "relu1", "conv2", "relu3")


def tiled(model, fused, grid):
    prep = prepare(model)
    cand = next(c for c in prep.candidates if c.tensor == fused)
    block = make_block(prep.graph, prep.prefix, cand)
    return tile_graph(gs.import_onnx(prep.model), make_tiling(block, grid)), block


def ops(graph: gs.Graph) -> Counter:
    return Counter(n.op for n in graph.nodes)


@pytest.mark.parametrize("grid", [(1, 1), (1, 3), (3, 1), (2, 2), (3, 5)])
def test_a_conv_stack_becomes_p_paths_and_a_fuse(grid) -> None:
    # Graph:        x -> conv0 -> relu1 -> conv2 -> relu3 (F, 9x7) -> GAP -> Flatten -> Gemm -> y
    # Should become: per path p, x -> x/p{p}/slice -> conv0/p{p} -> relu1/p{p} -> conv2/p{p}
    #                -> relu3/p{p}; then a Concat along W per row and one along H (an Identity
    #                for 1x1), then the untouched tail.
    rows, cols = grid
    paths = rows * cols
    result, _ = tiled(conv_stack(), F, grid)
    graph = result.graph
    counts = ops(graph)
    assert counts["Slice"] == paths  # a chain needs no crop
    assert counts["Concat"] == (rows if cols > 1 else 0) + (1 if rows > 1 else 0)
    assert counts["Identity"] == (1 if paths == 1 else 0)
    assert counts["Conv"] == 2 * paths and counts["Relu"] == 2 * paths
    assert counts["GlobalAveragePool"] == counts["Gemm"] == 1

    names = {n.name for n in graph.nodes}
    for p in range(paths):
        assert {f"{b}/p{p}" for b in BLOCK} <= names
        assert f"{INPUT}/p{p}/slice" in names
        assert result.copies[p] == tuple(f"{b}/p{p}" for b in BLOCK)
        assert result.input_slices[p] == f"{INPUT}/p{p}/slice"
    assert not names & set(BLOCK)  # the originals are gone
    tensors = graph.tensors()
    for p in range(paths):
        for t in (INPUT, "conv0_out", "relu1_out", "conv2_out", F):
            assert tile_tensor_name(p, t) in tensors
    assert [t.name for t in graph.inputs] == [INPUT]
    assert [t.name for t in graph.outputs] == [OUTPUT]
    # Rows are concatenated first ("fl_fuse/row{r}") only when there are rows and columns.
    fuse = [f"fl_fuse/row{r}" for r in range(rows)] if rows > 1 and cols > 1 else []
    assert list(result.fuse_nodes) == [*fuse, "fl_fuse"]
    # F keeps its name and is produced by the fuse.
    assert tensors[F].inputs[0].name == "fl_fuse"


def test_interior_tile_borders_get_zero_pads() -> None:
    # Graph: conv0 with pads (1,1,1,1) tiled 2x2.
    # Should become: conv0/p0 pads (top 1, left 1, bottom 0, right 0), conv0/p3 (0, 0, 1, 1).
    result, _ = tiled(conv_stack(), F, (2, 2))
    by_name = {n.name: n for n in result.graph.nodes}
    assert by_name["conv0/p0"].attrs["pads"] == [1, 1, 0, 0]
    assert by_name["conv0/p1"].attrs["pads"] == [1, 0, 0, 1]
    assert by_name["conv0/p2"].attrs["pads"] == [0, 1, 1, 0]
    assert by_name["conv0/p3"].attrs["pads"] == [0, 0, 1, 1]


def test_tile_regions_follow_the_receptive_field() -> None:
    # Graph: x(17x13) -> conv 3x3 p1 -> relu -> conv 3x3 s2 p1 -> relu (F 9x7), grid 2x1.
    # Should become: F rows [0,5) and [5,9); conv2 row tiles read relu1 rows [0,10) and
    # [9,17); conv0 reads x rows [0,11) and [8,17).
    result, _ = tiled(conv_stack(), F, (2, 1))
    tensors = result.graph.tensors()
    assert tuple(tensors[tile_tensor_name(0, F)].shape[2:]) == (5, 7)
    assert tuple(tensors[tile_tensor_name(1, F)].shape[2:]) == (4, 7)
    assert tuple(tensors[tile_tensor_name(0, "relu1_out")].shape[2:]) == (10, 13)
    assert tuple(tensors[tile_tensor_name(1, "relu1_out")].shape[2:]) == (8, 13)
    assert tuple(tensors[tile_tensor_name(0, INPUT)].shape[2:]) == (11, 13)
    assert tuple(tensors[tile_tensor_name(1, INPUT)].shape[2:]) == (9, 13)
    starts = {n.name: n.inputs[1].values.tolist() for n in result.graph.nodes if n.op == "Slice"}
    assert starts == {f"{INPUT}/p0/slice": [0, 0], f"{INPUT}/p1/slice": [8, 0]}


def test_a_residual_add_gets_crops() -> None:
    # Graph: x -> conv0 (3x3, p1) -> relu1 -> a;  y0 = Add(a, conv3(relu(conv2(a))))
    # Should become: per path, Add reads a crop of relu1's tile (the branch needs a wider
    # halo than the Add): a Slice "{add}/p{p}/crop_relu1_out" recorded in crops[p].
    model = build(
        [
            conv(3, 3, 1, 1, (1, 1, 1, 1)),
            act("Relu"),
            residual([conv(3, 3, 1, 1, (1, 1, 1, 1)), act("Relu"), conv(3, 3, 1, 1, (1, 1, 1, 1))]),
        ],
        (1, 3, 13, 11),
    )
    result, block = tiled(model, "add5_out", (2, 3))
    add_index = [n.name for n in block.nodes].index("add5")
    for p in range(6):
        crop = f"add5/p{p}/crop_relu1_out"
        assert result.crops[p] == {crop: add_index}
        assert crop in {n.name for n in result.graph.nodes}
    assert ops(result.graph)["Slice"] == 6 + 6


def test_a_node_reading_one_tensor_twice_gets_one_crop() -> None:
    # Graph: x -> conv0 (1x1) -> DepthToSpace -> t;  y = Concat(t, t); grid 1x2.
    # Each tile of t is computed over whole 2-pixel blocks, wider than the Concat needs.
    # Should become: per path one crop "concat2/p{p}/crop_depthtospace1_out" read twice.
    model = build([conv(4, 1), d2s(2), concat([], [])], (1, 3, 5, 3), tail=None)
    result, _ = tiled(model, OUTPUT, (1, 2))
    assert_unique_names(result.graph)
    by_name = {n.name: n for n in result.graph.nodes}
    for p in range(2):
        crop = by_name[f"concat2/p{p}/crop_depthtospace1_out"]
        assert by_name[f"concat2/p{p}"].inputs == [crop.outputs[0], crop.outputs[0]]
        assert result.crops[p] == {crop.name: 2}
    x = random_input(model)
    np.testing.assert_array_equal(run(export(result.graph), x)[OUTPUT], run(model, x)[OUTPUT])


def test_weights_are_shared_not_copied() -> None:
    # Graph: x -> 4 convs of 8 channels, 5x5 kernels (the last with stride 2) -> F -> tail,
    # tiled 4x4 (16 paths).
    # Should become: every float initializer exported once; the only growth is the int64
    # starts/ends/axes of the 16 input Slices (768 bytes), within 5% of the weights.
    same = (2, 2, 2, 2)
    specs = [conv(8, 5, 1, 1, same), conv(8, 5, 1, 1, same), conv(8, 5, 1, 1, same)]
    model = build([*specs, conv(8, 5, 2, 1, same), act("Relu")], (1, 3, 23, 23))
    result, _ = tiled(model, "relu4_out", (4, 4))
    out = export(result.graph)
    assert initializer_bytes(out, float_only=True) == initializer_bytes(model, float_only=True)
    assert initializer_bytes(out) <= 1.05 * initializer_bytes(model)
    names = Counter(i.name for i in out.graph.initializer)
    assert max(names.values()) == 1
    weights = {i.name for i in model.graph.initializer}
    assert weights <= set(names)
    for node in out.graph.node:
        if node.op_type == "Conv":
            assert node.input[1] in weights


def test_pad_copies_get_their_own_pads_constant() -> None:
    # Graph: x -> Pad (1,0,2,3), value 0.5 -> conv0 (3x3) -> y; grid 2x2.
    # Should become: pad0/p{p} with a pads constant "pad0/p{p}/pads" that pads only the image
    # borders the tile touches, and the shared constant_value.
    model = build([pad((1, 0, 2, 3), 0.5), conv(2, 3)], (1, 2, 9, 11), tail=None)
    result, _ = tiled(model, OUTPUT, (2, 2))
    by_name = {n.name: n for n in result.graph.nodes}
    values = {p: by_name[f"pad0/p{p}"].inputs[1].values.tolist() for p in range(4)}
    assert values[0] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert values[3] == [0, 0, 0, 0, 0, 0, 2, 3]
    assert by_name["pad0/p0"].inputs[1].name == "pad0/p0/pads"
    assert len({id(by_name[f"pad0/p{p}"].inputs[2]) for p in range(4)}) == 1


def test_ceil_mode_is_kept_only_where_a_window_overhangs() -> None:
    # Graph: x (12x12) -> AveragePool 3x3 s2 pads 1 ceil_mode count_include_pad=1 -> y (7x7)
    # The last window starts at 11 and covers input 11, the pad at 12 and an overhang at 13.
    # Should become: the copies in the last row/column keep ceil_mode=1 and the original
    # end pad 1 there; the other copies have ceil_mode=0 and exact pads; no extra nodes.
    model = build([avgpool(3, 2, (1, 1, 1, 1), ceil=True, cip=1)], (1, 2, 12, 12), tail=None)
    result, _ = tiled(model, OUTPUT, (2, 2))
    by_name = {n.name: n for n in result.graph.nodes}
    pool = "averagepool0"
    assert by_name[f"{pool}/p0"].attrs["ceil_mode"] == 0
    assert by_name[f"{pool}/p0"].attrs["pads"] == [1, 1, 0, 0]
    assert by_name[f"{pool}/p3"].attrs["ceil_mode"] == 1
    assert by_name[f"{pool}/p3"].attrs["pads"] == [0, 0, 1, 1]
    assert by_name[f"{pool}/p3"].attrs["count_include_pad"] == 1
    assert ops(result.graph) == Counter({"Slice": 4, "AveragePool": 4, "Concat": 3})
    x = random_input(model)
    # Not bit-identical: onnxruntime sums an average in another order for other pads.
    got, want = run(export(result.graph), x)[OUTPUT], run(model, x)[OUTPUT]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_a_dilated_maxpool_overhang_stays_loadable() -> None:
    # Graph: x (17x23) -> MaxPool 3x3 s2 dilations 2 pads (2,1,1,2) ceil_mode -> y (8x11)
    # A tile pad holding the overhang would be 3 >= kernel 3, which onnxruntime refuses.
    # Should become: a tiled model onnxruntime loads, with every pad below the kernel.
    model = build([maxpool(3, 2, 2, (2, 1, 1, 2), ceil=True)], (1, 2, 17, 23), tail=None)
    result, _ = tiled(model, OUTPUT, (3, 3))
    for node in result.graph.nodes:
        if node.op == "MaxPool":
            assert max(node.attrs["pads"]) < 3, node.name
    x = random_input(model)
    assert np.array_equal(run(export(result.graph), x)[OUTPUT], run(model, x)[OUTPUT])


def test_tile_graph_raises_on_a_graph_without_the_block() -> None:
    _, block = tiled(conv_stack(), F, (1, 1))
    other = build([conv(2, 1)], (1, 3, 17, 13))
    with pytest.raises(InternalError, match="lacks block node"):
        tile_graph(gs.import_onnx(other), make_tiling(block, (2, 2)))


FUSED_MODEL_SPECS = [
    conv(4, 3, 2, 1, (1, 1, 1, 1)),
    act("Relu"),
    maxpool(3, 2, pads=(0, 0, 1, 1), ceil=True),
    conv(4, 3, 1, 1, (1, 0, 1, 2)),
]


@pytest.mark.parametrize(
    "grid",
    [(1, 1), (1, 5), (4, 1), (6, 5), (3, 5), (2, 3)],
    ids=["1x1", "1xN", "Nx1", "one_pixel", "3x5", "2x3"],
)
@pytest.mark.parametrize("batch", [1, 2])
def test_fused_tensor_equals_the_original(grid, batch) -> None:
    # Graph: x (23x19) -> conv s2 -> relu -> maxpool ceil -> conv asym -> F (6x5) -> tail.
    # Should become: a model whose F (the fuse output) equals the original F, rtol = atol =
    # 1e-5 (one-pixel tiles: grid 6x5 == F's size).
    model = build(FUSED_MODEL_SPECS, (batch, 3, 23, 19))
    fused = "conv3_out"
    result, block = tiled(model, fused, grid)
    assert block.fused_shape[2:] == (6, 5)
    out = export(result.graph)
    x = random_input(model, seed=3)
    want = run(model, x, extra=[fused])
    got = run(out, x, extra=[fused])
    for name in (fused, OUTPUT):
        check = compare(name, got[name], want[name], rtol=1e-5, atol=1e-5)
        assert check.passed, check


def test_the_tiled_model_keeps_the_opset_and_checks() -> None:
    for opset in (11, 13, 21):
        model = build(FUSED_MODEL_SPECS, (1, 3, 23, 19), opset=opset)
        compiled = compile_fl(model, "conv3_out", (2, 2))
        for m in (compiled.tiled_model, compiled.device, compiled.edge):
            assert [(o.domain, o.version) for o in m.opset_import] == [("", opset)]
            onnx.checker.check_model(m, full_check=True)
        assert compiled.tiled_model.ir_version == model.ir_version
