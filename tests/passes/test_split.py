"""Tests for flcompile.passes.split and placement: device.onnx / edge.onnx (docs/design.md §3)."""

from __future__ import annotations

import random

import onnx
import onnx_graphsurgeon as gs
import pytest
from graphs import (
    INPUT,
    OUTPUT,
    act,
    avgpool,
    build,
    compile_fl,
    conv,
    export,
    maxpool,
    prepare,
    residual,
)

from flcompile.errors import InternalError
from flcompile.passes.placement import device_nodes, placement_of
from flcompile.passes.split import prepare_single_cut, split
from flcompile.verify import FusedCheck, VerifyOptions, make_feeds, verify_split

# Graph: x (1x3x13x11) -> conv0 -> relu1 -> maxpool2 (ceil) -> conv3 -> relu4 (F, 7x6)
#        -> GlobalAveragePool -> Flatten -> Gemm -> y
SPECS = [
    conv(4, 3, 1, 1, (1, 1, 1, 1)),
    act("Relu"),
    maxpool(2, 2, ceil=True),
    conv(4, 3, 1, 1, (1, 0, 1, 2)),
    act("Relu"),
]
F = "relu4_out"
L = 5


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return build(SPECS, (1, 3, 13, 11))


@pytest.fixture(scope="module")
def prepared(model):
    return prepare(model)


def _value_infos(values) -> list[tuple[str, int, tuple]]:
    return [
        (
            v.name,
            v.type.tensor_type.elem_type,
            tuple(d.dim_value for d in v.type.tensor_type.shape.dim),
        )
        for v in values
    ]


def check_contract(model, compiled) -> None:
    """docs/design.md §3: device outputs are the sends in order; edge inputs are exactly them;
    edge outputs are the original outputs; edge(device(x)) and F match the original."""
    device, edge = compiled.device, compiled.edge
    assert [o.name for o in device.graph.output] == compiled.sends
    assert _value_infos(edge.graph.input) == _value_infos(device.graph.output)
    assert [i.name for i in device.graph.input] == [i.name for i in model.graph.input]
    assert _value_infos(edge.graph.output) == _value_infos(model.graph.output)
    result = verify_split(
        model,
        device,
        edge,
        make_feeds(model),
        options=VerifyOptions(
            rtol=1e-5, atol=1e-5, fused=FusedCheck(compiled.candidate.tensor, compiled.tiled_model)
        ),
    )
    assert result.passed, result.first_failure


def test_all_cuts_zero_sends_the_raw_input_tiles(model, prepared) -> None:
    # Graph: the tiled model, cuts [0, 0, 0, 0], order [2, 0, 3, 1].
    # Should become: device = the four input Slices, outputs fl_p2_x, fl_p0_x, fl_p3_x,
    # fl_p1_x; edge = every path copy, the fuse and the tail.
    compiled = compile_fl(prepared, F, (2, 2), 0, [2, 0, 3, 1])
    assert compiled.sends == [f"fl_p{p}_{INPUT}" for p in (2, 0, 3, 1)]
    assert {n.op_type for n in compiled.device.graph.node} == {"Slice"}
    edge_ops = [n.op_type for n in compiled.edge.graph.node]
    assert edge_ops.count("Conv") == 2 * 4 and "Gemm" in edge_ops
    check_contract(model, compiled)


def test_all_cuts_l_sends_the_f_tiles(model, prepared) -> None:
    # Should become: device = every path (4 x 5 copies and the Slices), outputs the F
    # tiles; edge = the fuse (2 row Concats and 1 column Concat) and the tail.
    compiled = compile_fl(prepared, F, (2, 2), L)
    assert compiled.sends == [f"fl_p{p}_{F}" for p in range(4)]
    assert len(compiled.device.graph.node) == 4 + 4 * L
    assert [n.op_type for n in compiled.edge.graph.node] == [
        "Concat",
        "Concat",
        "Concat",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
    ]
    check_contract(model, compiled)


@pytest.mark.parametrize("seed", range(6))
def test_mixed_cuts_and_random_orders(model, prepared, seed) -> None:
    rnd = random.Random(seed)
    grid = rnd.choice([(1, 3), (3, 1), (2, 3), (7, 6)])
    paths = grid[0] * grid[1]
    cuts = [rnd.randint(0, L) for _ in range(paths)]
    cuts[0], cuts[-1] = 0, L  # both extremes in every plan
    order = rnd.sample(range(paths), paths)
    compiled = compile_fl(prepared, F, grid, cuts, order)
    # Grouped by path in run order.
    sent_paths = [int(name.split("_")[1][1:]) for name in compiled.sends]
    assert sent_paths == sorted(sent_paths, key=order.index)
    check_contract(model, compiled)


def _residual_with_a_crop() -> onnx.ModelProto:
    # Graph: x -> conv0 -> relu1 -> a; add5 = Add(a, conv4(relu3(conv2(a)))) -> F -> tail.
    # Every tile of a carries the branch's 3-pixel halo; add5 reads a cropped copy of it.
    return build(
        [
            conv(3, 3, 1, 1, (1, 1, 1, 1)),
            act("Relu"),
            residual([conv(3, 3, 1, 1, (1, 1, 1, 1)), act("Relu"), conv(3, 3, 1, 1, (1, 1, 1, 1))]),
        ],
        (1, 3, 11, 13),
    )


def test_a_cut_inside_a_residual_block_sends_both_branches() -> None:
    # Graph: x -> conv0 -> relu1 -> a; Add(a, conv3(relu(conv2(a)))) -> F -> tail.
    # Should become, with cut 3 (after relu1, conv2 and relu3): both a (for the Add) and
    # relu3's tile cross, in production order.
    model = _residual_with_a_crop()
    compiled = compile_fl(model, "add5_out", (2, 2), 4, [3, 2, 1, 0])
    assert compiled.sends[:2] == ["fl_p3_relu1_out", "fl_p3_relu3_out"]
    assert len(compiled.sends) == 8
    check_contract(model, compiled)


@pytest.mark.parametrize("cuts", [[c] * 4 for c in range(7)] + [[5, 4, 6, 5], [6, 5, 0, 5]])
def test_a_crop_runs_beside_the_node_it_feeds_at_every_cut(cuts) -> None:
    # The crop of a for add5 (block node 5) runs on the device exactly when add5 does: with
    # cut 5, add5 is the first edge node, so its crop is on the edge and a's tile is sent.
    model = _residual_with_a_crop()
    compiled = compile_fl(model, "add5_out", (2, 2), cuts, [3, 1, 2, 0])
    assert [n.name for n in compiled.block.nodes][5] == "add5"
    on_device = device_nodes(compiled.tiled, cuts)
    for p, cut in enumerate(cuts):
        assert compiled.tiled.crops[p] == {f"add5/p{p}/crop_relu1_out": 5}
        assert (f"add5/p{p}/crop_relu1_out" in on_device) == (cut > 5)
        assert (f"add5/p{p}" in on_device) == (cut > 5)
        if cut == 5:
            assert f"fl_p{p}_relu1_out" in compiled.sends
    device_ops = {n.name for n in compiled.device.graph.node}
    assert device_ops == on_device
    check_contract(model, compiled)


def test_a_ceil_overhang_avgpool_runs_on_the_device() -> None:
    # Graph: x (12x12) -> AveragePool 3x3 s2 p1 ceil count_include_pad=1 -> relu -> y.
    # Should become, with cut 1: the pool copies on the device, their tiles sent.
    model = build([avgpool(3, 2, (1, 1, 1, 1), True, 1), act("Relu")], (1, 2, 12, 12))
    compiled = compile_fl(model, "relu1_out", (2, 2), 1, [3, 1, 0, 2])
    assert compiled.sends == [f"fl_p{p}_averagepool0_out" for p in (3, 1, 0, 2)]
    check_contract(model, compiled)


def test_placement_labels_every_node(prepared) -> None:
    compiled = compile_fl(prepared, F, (1, 2), [2, 0])
    placement = placement_of(compiled.tiled, [2, 0])
    assert placement["conv0/p0"] == placement["relu1/p0"] == ("device", "0")
    assert placement["maxpool2/p0"] == ("edge", "0")
    assert placement["conv0/p1"] == ("edge", "1")
    assert placement[f"{INPUT}/p1/slice"] == ("device", "1")
    assert placement["fl_fuse"] == ("edge", "")
    assert {n.name for n in compiled.device.graph.node} == {
        name for name, (side, _) in placement.items() if side == "device"
    }


def test_split_raises_when_the_sends_are_wrong(prepared) -> None:
    compiled = compile_fl(prepared, F, (2, 2), 2)
    graph = gs.import_onnx(compiled.tiled_model)
    on_device = device_nodes(compiled.tiled, compiled.cuts)
    sends = compiled.sends
    device, edge = split(graph, on_device, sends)  # the right sends work
    assert [t.name for t in device.outputs] == [t.name for t in edge.inputs] == sends
    with pytest.raises(InternalError, match="differ from what crosses the cut"):
        split(graph, on_device, sends[:-1])  # one missing
    with pytest.raises(InternalError, match="differ from what crosses the cut"):
        split(graph, on_device, [*sends, f"fl_p0_{INPUT}"])  # one that does not cross
    with pytest.raises(InternalError, match="differ from what crosses the cut"):
        split(graph, on_device, [*sends, sends[0]])  # sent twice
    with pytest.raises(InternalError, match="differ from what crosses the cut"):
        split(graph, on_device - {"conv0/p0"}, sends)  # placement and sends disagree


# --------------------------------------------------------------------------- no-FL plans


def single_cut(model, prepared, on_device: set[str]):
    graph = gs.import_onnx(prepared.model)
    on_device, sends = prepare_single_cut(graph, on_device)
    device, edge = split(graph, on_device, sends)
    dm, em = export(device), export(edge)
    assert [o.name for o in dm.graph.output] == sends
    assert _value_infos(em.graph.input) == _value_infos(dm.graph.output)
    assert [o.name for o in em.graph.output] == [OUTPUT]
    result = verify_split(
        model, dm, em, make_feeds(model), options=VerifyOptions(rtol=1e-5, atol=1e-5)
    )
    assert result.passed, result.first_failure
    return dm, em, sends


def test_full_offload_sends_the_input_through_an_identity(model, prepared) -> None:
    # Should become: device = Identity(x) -> fl_cut_x; edge = the whole model on fl_cut_x.
    dm, em, sends = single_cut(model, prepared, set())
    assert sends == [f"fl_cut_{INPUT}"]
    assert [(n.op_type, n.name) for n in dm.graph.node] == [("Identity", f"fl_cut/{INPUT}")]
    assert len(em.graph.node) == len(prepared.model.graph.node)


def test_local_only_restores_the_output_name_on_the_edge(model, prepared) -> None:
    # Should become: device = the whole model, output fl_cut_y; edge = Identity -> y.
    everything = {n.name for n in prepared.model.graph.node}
    dm, em, sends = single_cut(model, prepared, everything)
    assert sends == [f"fl_cut_{OUTPUT}"]
    assert [(n.op_type, n.name) for n in em.graph.node] == [("Identity", f"fl_uncut/{OUTPUT}")]
    assert len(dm.graph.node) == len(everything)


def test_a_middle_cut_sends_one_tensor(model, prepared) -> None:
    # Should become: device = conv0, relu1, maxpool2 -> fl_cut_maxpool2_out; edge = the rest.
    dm, em, sends = single_cut(model, prepared, {"conv0", "relu1", "maxpool2"})
    assert sends == ["fl_cut_maxpool2_out"]
    assert [n.name for n in dm.graph.node] == ["conv0", "relu1", "maxpool2"]
    assert em.graph.node[0].input[0] == "fl_cut_maxpool2_out"


def _two_outputs() -> onnx.ModelProto:
    # Graph: the conv stack, then F -> GAP -> Flatten -> Gemm -> y and F -> GlobalMaxPool -> y2
    model = build(SPECS, (2, 3, 13, 11))
    model.graph.node.append(onnx.helper.make_node("GlobalMaxPool", [F], ["y2"], name="gmp"))
    model.graph.output.append(
        onnx.helper.make_tensor_value_info("y2", onnx.TensorProto.FLOAT, [2, 4, 1, 1])
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def test_a_model_with_two_outputs_after_f() -> None:
    # Should become: an edge model with both outputs, y then y2, both equal to the original.
    model = _two_outputs()
    compiled = compile_fl(model, F, (3, 2), [0, 5, 2, 3, 5, 1], [5, 4, 3, 2, 1, 0])
    assert [o.name for o in compiled.edge.graph.output] == [OUTPUT, "y2"]
    check_contract(model, compiled)


def test_local_only_with_two_outputs_restores_both_names() -> None:
    model = _two_outputs()
    prep = prepare(model)
    graph = gs.import_onnx(prep.model)
    on_device, sends = prepare_single_cut(graph, {n.name for n in graph.nodes})
    assert sorted(sends) == [f"fl_cut_{OUTPUT}", "fl_cut_y2"]  # in production order
    device, edge = split(graph, on_device, sends)
    dm, em = export(device), export(edge)
    assert sorted(n.name for n in em.graph.node) == [f"fl_uncut/{OUTPUT}", "fl_uncut/y2"]
    assert [o.name for o in em.graph.output] == [OUTPUT, "y2"]
    result = verify_split(
        model, dm, em, make_feeds(model), options=VerifyOptions(rtol=1e-5, atol=1e-5)
    )
    assert result.passed, result.first_failure


def test_every_single_cut_of_a_model_onnx_infers_wrongly() -> None:
    # Graph: x (1x3x20x17) -> conv0 -> maxpool1 (k 2, s 3, pads (0, 1, 1, 0), ceil: onnx
    #        infers 8x7, onnxruntime computes 7x6) -> conv2 -> relu3 -> GAP -> Flatten -> Gemm
    # A cut after maxpool1 sent a tensor declared 8x7 and the edge refused the 7x6 it got
    # ("Got invalid dimensions for input: fl_cut_maxpool1_out"). Should become: the tensors
    # from maxpool1 to the GAP lose their inferred shape, a sent one keeps its rank with
    # symbolic dims, and every cut verifies.
    specs = [
        conv(4, 3, 1, 1, (1, 1, 1, 1)),
        maxpool(2, 3, 1, (0, 1, 1, 0), ceil=True),
        conv(4, 3, 1, 1, (1, 1, 1, 1)),
        act("Relu"),
    ]
    model = build(specs, (1, 3, 20, 17), misinferred_ok=True)
    prepared = prepare(model)
    names = [n.name for n in prepared.graph.nodes]
    wrong = {"maxpool1_out", "conv2_out", "relu3_out"}
    for k in range(len(names) + 1):
        _, em, sends = single_cut(model, prepared, set(names[:k]))
        crossing = sends[0].removeprefix("fl_cut_")
        dims = [d.dim_value for d in em.graph.input[0].type.tensor_type.shape.dim]
        assert (crossing in wrong) == (0 in dims), (k, crossing, dims)
        shaped = {v.name for v in em.graph.value_info if v.type.tensor_type.HasField("shape")}
        assert not shaped & wrong, shaped & wrong
