"""Tests for flcompile.passes.normalize: the canonical form the tiler expects."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from graphs import INPUT, OUTPUT, avgpool, build, conv, export, maxpool, random_input, run
from onnx import TensorProto, helper, numpy_helper

from flcompile.load import infer_shapes
from flcompile.passes.fusable import find_prefix
from flcompile.passes.normalize import explicit_pads, normalize

X = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, 2, 7, 9])


def _weight(name: str = "W", shape=(3, 2, 3, 3)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _model(nodes, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [X], outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _y(shape=(1, 3, 5, 7), name: str = OUTPUT, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def normalized(model: onnx.ModelProto):
    graph = gs.import_onnx(infer_shapes(model, "test"))
    report = normalize(graph)
    return graph, report, export(graph)


def _same_outputs(a: onnx.ModelProto, b: onnx.ModelProto) -> None:
    x = random_input(a)
    want, got = run(a, x), run(b, x)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_identity_fed_initializers_are_folded() -> None:
    # Graph: W (initializer) -> Identity -> W_id;  x -> Conv(x, W_id) -> y
    # Should become: x -> Conv(x, W) -> y, W a constant.
    model = _model(
        [
            helper.make_node("Identity", ["W"], ["W_id"], name="id"),
            helper.make_node("Conv", [INPUT, "W_id"], [OUTPUT], name="conv"),
        ],
        [_y()],
        [numpy_helper.from_array(_weight(), "W")],
    )
    graph, report, out = normalized(model)
    assert [n.op for n in graph.nodes] == ["Conv"]
    assert isinstance(graph.nodes[0].inputs[1], gs.Constant)
    assert report.folded == 1
    _same_outputs(model, out)


def test_an_initializer_shared_through_identities_stays_one_constant() -> None:
    # Graph (the legacy torch exporter's deduplicated weights):
    #   x -> Conv(x, W) -> a;  W -> Identity -> W2;  a -> Conv(a, W2) -> b;  W -> Identity -> W3;
    #   b -> Conv(b, W3) -> y
    # Should become: the three Convs read the one constant W (one tensor, not three copies).
    w = np.random.default_rng(1).standard_normal((2, 2, 3, 3)).astype(np.float32)
    model = _model(
        [
            helper.make_node("Conv", [INPUT, "W"], ["a"], name="c1", pads=[1, 1, 1, 1]),
            helper.make_node("Identity", ["W"], ["W2"], name="id2"),
            helper.make_node("Conv", ["a", "W2"], ["b"], name="c2", pads=[1, 1, 1, 1]),
            helper.make_node("Identity", ["W"], ["W3"], name="id3"),
            helper.make_node("Conv", ["b", "W3"], [OUTPUT], name="c3", pads=[1, 1, 1, 1]),
        ],
        [_y((1, 2, 7, 9))],
        [numpy_helper.from_array(w, "W")],
    )
    graph, report, out = normalized(model)
    assert [n.op for n in graph.nodes] == ["Conv"] * 3
    weights = {id(n.inputs[1]) for n in graph.nodes}
    assert len(weights) == 1 and graph.nodes[0].inputs[1].name == "W"
    assert report.folded == 2
    assert [t.name for t in out.graph.initializer] == ["W"]
    _same_outputs(model, out)


def test_constant_nodes_are_folded() -> None:
    # Graph: Constant -> W;  Constant -> B;  x -> Conv(x, W, B) -> y
    # Should become: x -> Conv(x, W, B) -> y with W and B constants.
    model = _model(
        [
            helper.make_node(
                "Constant", [], ["W"], value=numpy_helper.from_array(_weight(), "w"), name="cw"
            ),
            helper.make_node(
                "Constant", [], ["B"], value=numpy_helper.from_array(np.ones(3, np.float32), "b")
            ),
            helper.make_node("Conv", [INPUT, "W", "B"], [OUTPUT], name="conv"),
        ],
        [_y()],
    )
    graph, report, out = normalized(model)
    assert [n.op for n in graph.nodes] == ["Conv"]
    assert all(isinstance(t, gs.Constant) for t in graph.nodes[0].inputs[1:])
    assert report.folded == 2
    _same_outputs(model, out)


def test_constant_and_identity_fed_clip_bounds_keep_clip_local() -> None:
    # Graph: x -> Conv -> Clip(min = Constant 0, max = Identity(initializer 6)) -> y
    # Should become: x -> Conv -> Clip(0, 6) -> y, with the Clip in the fusable prefix.
    model = _model(
        [
            helper.make_node("Conv", [INPUT, "W"], ["c"], name="conv"),
            helper.make_node(
                "Constant",
                [],
                ["lo"],
                value=numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
                name="lo",
            ),
            helper.make_node("Identity", ["six"], ["hi"], name="hi"),
            helper.make_node("Clip", ["c", "lo", "hi"], [OUTPUT], name="relu6"),
        ],
        [_y()],
        [
            numpy_helper.from_array(_weight(), "W"),
            numpy_helper.from_array(np.array(6.0, np.float32), "six"),
        ],
    )
    graph, _, out = normalized(model)
    assert [n.op for n in graph.nodes] == ["Conv", "Clip"]
    assert all(isinstance(t, gs.Constant) for t in graph.nodes[1].inputs[1:])
    assert find_prefix(graph).nodes == ("conv", "relu6")
    _same_outputs(model, out)


def test_shape_subgraphs_are_folded() -> None:
    # Graph: x -> Relu -> r;  Shape(r) -> Gather(0) -> Unsqueeze -> Concat([-1]) -> s;
    #        Reshape(r, s) -> y (1 x 126)
    # Should become: x -> Relu -> Reshape(r, constant [1, -1]) -> y.
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
    ]
    model = _model(
        [
            helper.make_node("Relu", [INPUT], ["r"], name="relu"),
            helper.make_node("Shape", ["r"], ["shape"], name="shape"),
            helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather"),
            helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
            helper.make_node("Concat", ["n1", "minus_one"], ["s"], axis=0, name="concat"),
            helper.make_node("Reshape", ["r", "s"], [OUTPUT], name="reshape"),
        ],
        [_y((1, 126))],
        inits,
    )
    graph, _, out = normalized(model)
    assert [n.op for n in graph.nodes] == ["Relu", "Reshape"]
    assert graph.nodes[1].inputs[1].values.tolist() == [1, -1]
    _same_outputs(model, out)


def test_dropout_and_identity_are_removed_but_graph_outputs_kept() -> None:
    # Graph: x -> Conv -> c -> Dropout -> d -> Identity -> i -> Relu -> r -> Identity -> y
    # Should become: x -> Conv -> c -> Relu -> r -> Identity -> y (y is a graph output, so
    # its Identity stays; the names of x and y are kept).
    model = _model(
        [
            helper.make_node("Conv", [INPUT, "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Dropout", ["c"], ["d"], name="drop"),
            helper.make_node("Identity", ["d"], ["i"], name="id1"),
            helper.make_node("Relu", ["i"], ["r"], name="relu"),
            helper.make_node("Identity", ["r"], [OUTPUT], name="id2"),
        ],
        [_y((1, 3, 7, 9))],
        [numpy_helper.from_array(_weight(), "W")],
    )
    graph, report, out = normalized(model)
    assert [(n.op, n.name) for n in graph.nodes] == [
        ("Conv", "conv"),
        ("Relu", "relu"),
        ("Identity", "id2"),
    ]
    assert graph.nodes[1].inputs[0].name == "c"
    assert report.bypassed == 2
    assert [t.name for t in graph.inputs] == [INPUT]
    assert [t.name for t in graph.outputs] == [OUTPUT]
    _same_outputs(model, out)


def test_a_dropout_whose_mask_is_read_stays() -> None:
    # Graph: x -> Dropout -> (d, mask); d -> y; mask -> Cast -> m (a second output)
    # Should become: unchanged (the mask is needed).
    model = _model(
        [
            helper.make_node("Dropout", [INPUT], ["d", "mask"], name="drop"),
            helper.make_node("Relu", ["d"], [OUTPUT], name="relu"),
            helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT, name="cast"),
        ],
        [_y((1, 2, 7, 9)), _y((1, 2, 7, 9), "m")],
    )
    graph, report, _ = normalized(model)
    assert [n.op for n in graph.nodes] == ["Dropout", "Relu", "Cast"]
    assert report.bypassed == 0


def test_explicit_pads_by_hand() -> None:
    # n = 13, k = 4, s = 2: out = ceil(13 / 2) = 7, total pad = 6·2 + 4 − 13 = 3.
    # Should give: SAME_UPPER (1 begin, 2 end), SAME_LOWER (2, 1), VALID 0.
    x = gs.Variable("x", np.float32, (1, 1, 13, 13))
    w = gs.Constant("w", np.zeros((1, 1, 4, 4), np.float32))
    for auto_pad, pads in [
        ("SAME_UPPER", [1, 1, 2, 2]),
        ("SAME_LOWER", [2, 2, 1, 1]),
        ("VALID", [0, 0, 0, 0]),
    ]:
        node = gs.Node("Conv", attrs={"auto_pad": auto_pad, "strides": [2, 2]}, inputs=[x, w])
        assert explicit_pads(node) == pads
    assert explicit_pads(gs.Node("Conv", inputs=[x, w])) is None
    # Stride 3 on 13 with kernel 2: out 5, total = 4·3 + 2 − 13 = 1 -> UPPER (0, 1).
    node = gs.Node(
        "MaxPool", attrs={"auto_pad": b"SAME_UPPER", "kernel_shape": [2, 2], "strides": [3, 3]}
    )
    node.inputs.append(x)
    assert explicit_pads(node) == [0, 0, 1, 1]


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize(
    "layer",
    [
        lambda a: conv(3, 4, 2, auto_pad=a),
        lambda a: conv(3, (3, 2), (1, 3), auto_pad=a, group="dw"),
        lambda a: maxpool((3, 2), 2, auto_pad=a),
        lambda a: avgpool(3, 2, auto_pad=a),
        lambda a: avgpool(2, 3, cip=1, auto_pad=a),
    ],
    ids=["conv", "conv_dw", "maxpool", "avgpool", "avgpool_cip1"],
)
def test_auto_pad_becomes_explicit_pads_with_the_same_result(auto_pad, layer) -> None:
    # Graph: x (odd size) -> conv -> y0 -> op(auto_pad) -> y  (the op reads an inner tensor)
    # Should become: the same op with explicit pads and no auto_pad, equal in onnxruntime.
    model = build([conv(3, 1), layer(auto_pad)], (2, 3, 13, 17), tail=None)
    graph, report, out = normalized(model)
    node = graph.nodes[1]
    assert "auto_pad" not in node.attrs
    assert len(node.attrs["pads"]) == 4
    assert report.explicit_pads == 1
    _same_outputs(model, out)


def test_without_inferred_shapes_an_inner_auto_pad_ends_the_prefix() -> None:
    # normalize needs shapes for auto_pad; without them the op stays and the fusable region
    # ends there with the reason, instead of a crash.
    model = build([conv(3, 1), conv(3, 3, auto_pad="SAME_UPPER")], (1, 3, 13, 13), tail=None)
    graph = gs.import_onnx(model)
    normalize(graph)
    assert graph.nodes[1].attrs["auto_pad"] == "SAME_UPPER"
    graph = gs.import_onnx(infer_shapes(gs.export_onnx(graph), "test"))
    prefix = find_prefix(graph)
    assert prefix.nodes == ("conv0",)
    assert prefix.stops == ("conv1 (Conv): auto_pad could not be resolved to explicit pads",)


def test_unnamed_and_duplicate_nodes_get_unique_names() -> None:
    # Graph: x -> Relu "" -> Sigmoid "a" -> Tanh "a" -> Relu "" -> y
    # Should become: Relu_0, a, Tanh_2, Relu_3 (op and index), and the outputs keep names.
    model = _model(
        [
            helper.make_node("Relu", [INPUT], ["r"]),
            helper.make_node("Sigmoid", ["r"], ["s"], name="a"),
            helper.make_node("Tanh", ["s"], ["t"], name="a"),
            helper.make_node("Relu", ["t"], [OUTPUT]),
        ],
        [_y((1, 2, 7, 9))],
    )
    graph, report, out = normalized(model)
    assert [n.name for n in graph.nodes] == ["Relu_0", "a", "Tanh_2", "Relu_3"]
    assert report.named == 3
    assert [t.name for t in graph.outputs] == [OUTPUT]
    # onnxruntime refuses the original (two nodes named "a") but runs the normalized model.
    x = random_input(model)
    want = np.maximum(np.tanh(1 / (1 + np.exp(-np.maximum(x[INPUT], 0)))), 0)
    np.testing.assert_allclose(run(out, x)[OUTPUT], want, rtol=1e-6, atol=1e-6)


def test_a_name_taken_by_another_node_is_not_reused() -> None:
    # Graph: x -> Relu "" -> Relu "Relu_0" -> y: the first cannot become Relu_0.
    model = _model(
        [
            helper.make_node("Relu", [INPUT], ["r"]),
            helper.make_node("Relu", ["r"], [OUTPUT], name="Relu_0"),
        ],
        [_y((1, 2, 7, 9))],
    )
    graph, _, _ = normalized(model)
    names = [n.name for n in graph.nodes]
    assert len(set(names)) == 2 and "Relu_0" in names
