"""Casts at the send boundary: what crosses the link travels in its wire dtype, then is restored.

    sending side:    … ─ t (float32)         becomes   … ─ t/float32 ─ Cast ─ t (float16)
    receiving side:  t (float32) ─ …         becomes   t (float16) ─ Cast ─ t/float32 ─ …

The sent tensor keeps its name, so the device and edge models (and the stage models) still
meet on it; only its dtype on the link changes. A graph output named in `wire` is cast on the
sending side, a graph input named in `wire` is cast back on the receiving side, and nothing
else changes. A graph that neither outputs nor inputs a tensor of `wire` is left untouched.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from flcompile.errors import InternalError


def cast_node_name(tensor: str, dtype: np.dtype | type) -> str:
    """The name of the Cast that turns sent tensor `tensor` into `dtype`."""
    return f"{tensor}/to_{np.dtype(dtype).name}"


def _cast(name: str, source: gs.Variable, target: gs.Variable) -> gs.Node:
    to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(target.dtype))
    return gs.Node("Cast", name=name, attrs={"to": to}, inputs=[source], outputs=[target])


def _full_name(tensor: str, dtype: np.dtype | type) -> str:
    return f"{tensor}/{np.dtype(dtype).name}"


def cast_sends(graph: gs.Graph, wire: Mapping[str, np.dtype]) -> gs.Graph:
    """Cast, in place, the graph's outputs in `wire` to their wire dtype and its inputs in
    `wire` back to their own dtype.

    Args:
        graph: a device, edge or stage graph.
        wire: sent tensor name -> the dtype it travels as (only tensors whose dtype changes).

    Returns:
        `graph`, for chaining.

    Raises:
        InternalError: a sent tensor is both an input and an output of the graph.
    """
    outputs = [i for i, t in enumerate(graph.outputs) if t.name in wire]
    inputs = [i for i, t in enumerate(graph.inputs) if t.name in wire]
    if not outputs and not inputs:
        return graph
    for i in outputs:
        full = graph.outputs[i]
        if full in graph.inputs:
            raise InternalError(f"sent tensor {full.name} is both an input and an output")
        name, dtype = full.name, wire[full.name]
        full.name = _full_name(name, full.dtype)
        sent = gs.Variable(name, dtype=dtype, shape=full.shape)
        graph.nodes.append(_cast(cast_node_name(name, dtype), full, sent))
        graph.outputs[i] = sent
    for i in inputs:
        sent = graph.inputs[i]
        if sent in graph.outputs:
            raise InternalError(f"sent tensor {sent.name} is both an input and an output")
        restored = gs.Variable(
            _full_name(sent.name, sent.dtype), dtype=sent.dtype, shape=sent.shape
        )
        for consumer in list(sent.outputs):
            for j, t in enumerate(consumer.inputs):
                if t is sent:
                    consumer.inputs[j] = restored
        graph.nodes.append(_cast(cast_node_name(sent.name, sent.dtype), sent, restored))
        sent.dtype = wire[sent.name]
    return graph.toposort()
