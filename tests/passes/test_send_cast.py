"""The send-boundary Casts of `--send-dtype`: names kept, dtypes changed, values rounded once."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest

from flcompile.errors import InternalError
from flcompile.passes.send_cast import cast_node_name, cast_sends

HALF = {"t": np.dtype(np.float16)}


def _run(graph: gs.Graph, feeds: dict) -> dict[str, np.ndarray]:
    model = gs.export_onnx(graph)
    model.opset_import[0].version = 17
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _device() -> gs.Graph:
    # Graph: x -> Relu -> t (output, also read by Neg -> u, a second output).
    x = gs.Variable("x", np.float32, (1, 2, 3, 3))
    t = gs.Variable("t", np.float32, (1, 2, 3, 3))
    u = gs.Variable("u", np.float32, (1, 2, 3, 3))
    nodes = [
        gs.Node("Relu", "relu", inputs=[x], outputs=[t]),
        gs.Node("Neg", "neg", inputs=[t], outputs=[u]),
    ]
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[t, u])


def _edge() -> gs.Graph:
    # Graph: t -> Sigmoid -> y.
    t = gs.Variable("t", np.float32, (1, 2, 3, 3))
    y = gs.Variable("y", np.float32, (1, 2, 3, 3))
    return gs.Graph(
        nodes=[gs.Node("Sigmoid", "sig", inputs=[t], outputs=[y])], inputs=[t], outputs=[y]
    )


def test_the_sending_side_casts_its_sent_output_and_keeps_its_name() -> None:
    # Should become: x -> Relu -> t/float32 -> Cast -> t (float16); Neg still reads float32.
    graph = cast_sends(_device(), HALF)
    casts = [n for n in graph.nodes if n.op == "Cast"]
    assert [n.name for n in casts] == [cast_node_name("t", np.float16)] == ["t/to_float16"]
    assert [(o.name, o.dtype) for o in graph.outputs] == [("t", np.float16), ("u", np.float32)]
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32) * 100
    got = _run(graph, {"x": x})
    np.testing.assert_array_equal(got["t"], np.maximum(x, 0).astype(np.float16))
    np.testing.assert_array_equal(got["u"], -np.maximum(x, 0))  # unrounded: read before the Cast


def test_the_receiving_side_casts_back_and_rounds_only_once() -> None:
    # Should become: t (float16) -> Cast -> t/float32 -> Sigmoid -> y.
    graph = cast_sends(_edge(), HALF)
    assert [n.op for n in graph.nodes] == ["Cast", "Sigmoid"]
    assert [(i.name, i.dtype) for i in graph.inputs] == [("t", np.float16)]
    t = np.linspace(-4, 4, 18, dtype=np.float16).reshape(1, 2, 3, 3)
    got = _run(graph, {"t": t})["y"]
    want = 1 / (1 + np.exp(-t.astype(np.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32 arithmetic on the float16 values


def test_nothing_to_cast_leaves_the_graph_alone() -> None:
    graph = _edge()
    before = [n.name for n in graph.nodes]
    assert cast_sends(graph, {"other": np.dtype(np.float16)}) is graph
    assert [n.name for n in graph.nodes] == before and graph.inputs[0].dtype == np.float32


def test_a_tensor_both_received_and_sent_is_a_bug() -> None:
    t = gs.Variable("t", np.float32, (1, 1, 1, 1))
    graph = gs.Graph(nodes=[], inputs=[t], outputs=[t])
    with pytest.raises(InternalError, match="both an input and an output"):
        cast_sends(graph, HALF)
