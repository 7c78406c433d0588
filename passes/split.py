"""Device/edge split (docs/design.md §3): cut an annotated graph into device.onnx and edge.onnx.

    x ─ [device nodes] ─ t1, t2 ─ [edge nodes] ─ y      becomes
    device: x ─ [device nodes] ─ outputs t1, t2
    edge:   inputs t1, t2 ─ [edge nodes] ─ y

For a plan without fused layers the one tensor t that crosses is renamed `fl_cut_{t}`, with
an Identity where t is a graph input (full offload) or a graph output (local-only).

Where onnx shape inference gets a tensor's shape wrong (see `misinferred_tensors`), both
models leave that shape out, and a graph input or output gets symbolic dims instead, so
onnxruntime never checks a tensor against a size it does not compute.
"""

from __future__ import annotations

import logging

import onnx_graphsurgeon as gs

from flcompile.errors import InternalError
from flcompile.passes.local_ops import misinferred_tensors

log = logging.getLogger(__name__)


def crossing_tensors(graph: gs.Graph, device_nodes: set[str]) -> set[str]:
    """Names of the tensors computed on the device (or graph inputs) that the edge needs."""
    produced_on_device = {t.name for t in graph.inputs}
    for node in graph.nodes:
        if node.name in device_nodes:
            produced_on_device.update(o.name for o in node.outputs if o.name)
    needed = {t.name for t in graph.outputs}
    for node in graph.nodes:
        if node.name not in device_nodes:
            needed.update(t.name for t in node.inputs if t.name and not isinstance(t, gs.Constant))
    return produced_on_device & needed


def extract(graph: gs.Graph, inputs: list[str], outputs: list[str], label: str) -> gs.Graph:
    """A copy of the part of `graph` that computes `outputs` from `inputs`.

    Raises:
        InternalError: that part needs a tensor that is neither an input nor computed.
    """
    sub = _copy_of_part(graph, set(inputs), outputs)
    tensors = sub.tensors()
    try:
        new_inputs = [tensors[name] for name in inputs]
        new_outputs = [tensors[name] for name in outputs]
    except KeyError as e:
        raise InternalError(f"{label}: the graph has no tensor {e}") from e
    for tensor in new_inputs:
        tensor.inputs.clear()
    sub.inputs = new_inputs
    sub.outputs = new_outputs
    sub.cleanup(remove_unused_graph_inputs=False).toposort()
    available = set(inputs)
    for node in sub.nodes:
        for t in node.inputs:
            if t.name and not isinstance(t, gs.Constant) and t.name not in available:
                raise InternalError(f"{label}: node {node.name} reads {t.name}, which it lacks")
        available.update(o.name for o in node.outputs)
    return sub


def _copy_of_part(graph: gs.Graph, inputs: set[str], outputs: list[str]) -> gs.Graph:
    """A copy of `graph` holding only the nodes that `outputs` depend on short of `inputs`
    (copying a tiled graph whole for each of its many stages costs more than cutting it)."""
    by_name = graph.tensors()
    needed: dict[int, gs.Node] = {}
    stack = [by_name[name] for name in outputs if name in by_name]
    while stack:
        tensor = stack.pop()
        if tensor.name in inputs:
            continue
        for node in tensor.inputs:
            if id(node) not in needed:
                needed[id(node)] = node
                stack.extend(t for t in node.inputs if t.name)
    everything = graph.nodes
    try:
        graph.nodes = [n for n in everything if id(n) in needed]
        return graph.copy()
    finally:
        graph.nodes = everything


def split(graph: gs.Graph, device_nodes: set[str], sends: list[str]) -> tuple[gs.Graph, gs.Graph]:
    """Split `graph` into the device and edge graphs.

    The shapes onnx infers wrongly are left out of `graph` itself too (see
    `forget_misinferred_shapes`).

    Args:
        graph: the annotated graph (tiled, or with a single cut prepared by `prepare_single_cut`).
        device_nodes: names of the nodes that run on the device.
        sends: the tensors that cross, in the order the device outputs them.

    Returns:
        (device graph, edge graph).

    Raises:
        InternalError: `sends` is not exactly what crosses the cut.
    """
    crossing = crossing_tensors(graph, device_nodes)
    if crossing != set(sends) or len(sends) != len(set(sends)):
        raise InternalError(
            f"the planned sends {sorted(sends)} differ from what crosses the cut {sorted(crossing)}"
        )
    inputs = [t.name for t in graph.inputs]
    outputs = [t.name for t in graph.outputs]
    forget_misinferred_shapes(graph, {*sends, *outputs})
    device = extract(graph, inputs, sends, "device.onnx")
    edge = extract(graph, sends, outputs, "edge.onnx")
    return device, edge


def forget_misinferred_shapes(graph: gs.Graph, boundary: set[str]) -> None:
    """Drop, in place, the shapes of the tensors whose inferred shape is wrong.

    Args:
        graph: the graph to split, with inferred shapes.
        boundary: the tensors that become graph inputs or outputs: they keep their rank, with
            a symbolic dim in place of each number.
    """
    wrong = misinferred_tensors(graph)
    tensors = graph.tensors()
    for name in wrong:
        tensor = tensors[name]
        if name in boundary and tensor.shape is not None:
            tensor.shape = [f"{name}_dim{i}" for i in range(len(tensor.shape))]
        else:
            tensor.shape = None
    if wrong:
        first = next(iter(wrong.values()))
        log.info("left out %d tensor shape(s) that onnx infers wrongly, from %s", len(wrong), first)


def single_cut_name(tensor: str) -> str:
    """The name a tensor crossing a plan without fused layers is sent under."""
    return f"fl_cut_{tensor}"


def prepare_single_cut(graph: gs.Graph, device_nodes: set[str]) -> tuple[set[str], list[str]]:
    """Rename what crosses a plan without fused layers to `fl_cut_*`, in place.

    Args:
        graph: the normalized graph.
        device_nodes: names of the nodes that run on the device (a topological prefix).

    Returns:
        The device node names (with any Identity added on the device) and the sends in order.
    """
    crossing = crossing_tensors(graph, device_nodes)
    tensors = graph.tensors()
    order = [t.name for t in graph.inputs] + [
        o.name for n in graph.nodes for o in n.outputs if o.name
    ]
    sends = []
    device_nodes = set(device_nodes)
    outputs = [t.name for t in graph.outputs]
    for name in [n for n in order if n in crossing]:
        tensor = tensors[name]
        sent = single_cut_name(name)
        if tensor in graph.inputs:
            copy = gs.Variable(sent, dtype=tensor.dtype, shape=tensor.shape)
            for consumer in list(tensor.outputs):
                for i, t in enumerate(consumer.inputs):
                    if t is tensor:
                        consumer.inputs[i] = copy
            node = gs.Node("Identity", name=f"fl_cut/{name}", inputs=[tensor], outputs=[copy])
            graph.nodes.append(node)
            device_nodes.add(node.name)
        elif name in outputs:
            tensor.name = sent
            restored = gs.Variable(name, dtype=tensor.dtype, shape=tensor.shape)
            node = gs.Node("Identity", name=f"fl_uncut/{name}", inputs=[tensor], outputs=[restored])
            graph.nodes.append(node)
            graph.outputs[outputs.index(name)] = restored
        else:
            tensor.name = sent
        sends.append(sent)
    graph.toposort()
    return device_nodes, sends
