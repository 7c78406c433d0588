"""Normalize what exporters emit so the tiler sees one canonical form.

Rewrites, in order:
    Identity(initializer)                             ->  the initializer itself (see below)
    Constant, shape subgraphs                         ->  folded constants
    Dropout(x) (inference), Identity(x)               ->  x          (where x is no graph output)
    Conv/MaxPool/AveragePool/LpPool(auto_pad=SAME_*/VALID) -> the same op with explicit pads
    nodes without a name                              ->  unique names "{op}_{index}"

The legacy torch exporter deduplicates identical initializers and feeds each further consumer
through its own Identity. Folding those Identities would give every consumer its own copy of
the tensor, so their consumers read the one shared initializer instead: every emitted model
then holds one copy of each original initializer.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import onnx_graphsurgeon as gs

from flcompile.passes.ops import rule_for
from flcompile.passes.ops.window import KernelRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NormalizeReport:
    """What `normalize` changed, for logs and tests."""

    folded: int
    bypassed: int
    explicit_pads: int
    named: int


def _bypass(graph: gs.Graph, node: gs.Node) -> bool:
    """Reconnect consumers of `node`'s only output to its first input; False if not possible."""
    out = node.outputs[0]
    if out in graph.outputs or any(o in graph.outputs for o in node.outputs):
        return False
    if any(o.outputs for o in node.outputs[1:]):
        return False  # a Dropout mask that somebody reads
    src = node.inputs[0]
    for consumer in list(out.outputs):
        for i, tensor in enumerate(consumer.inputs):
            if tensor is out:
                consumer.inputs[i] = src
    node.outputs.clear()
    node.inputs.clear()
    return True


def _share_identity_fed_constants(graph: gs.Graph) -> None:
    """Let consumers of Identity(constant) read the constant itself, shared, not a folded copy."""
    for node in graph.nodes:
        if node.op == "Identity" and node.inputs and isinstance(node.inputs[0], gs.Constant):
            _bypass(graph, node)


def explicit_pads(node: gs.Node) -> list[int] | None:
    """The explicit pads that reproduce `node`'s auto_pad, or None when it has none to resolve."""
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if auto_pad in ("NOTSET", ""):
        return None
    x = node.inputs[0]
    spatial = list(x.shape[2:]) if x.shape is not None else []
    if not spatial or not all(isinstance(d, int) for d in spatial):
        return None
    rank = len(spatial)
    if auto_pad == "VALID":
        return [0] * (2 * rank)
    if node.op == "Conv":
        kernel = node.attrs.get("kernel_shape") or list(node.inputs[1].shape[2:])
    else:
        kernel = node.attrs["kernel_shape"]
    strides = node.attrs.get("strides", [1] * rank)
    dilations = node.attrs.get("dilations", [1] * rank)
    begins, ends = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        out = math.ceil(n / s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        small, large = total // 2, total - total // 2
        begin, end = (small, large) if auto_pad == "SAME_UPPER" else (large, small)
        begins.append(begin)
        ends.append(end)
    return begins + ends


def normalize(graph: gs.Graph) -> NormalizeReport:
    """Rewrite `graph` in place into the canonical form the tiler expects.

    Args:
        graph: an imported graph whose tensors carry inferred shapes.

    Returns:
        Counts of what was rewritten.
    """
    before = len(graph.nodes)
    _share_identity_fed_constants(graph)
    graph.fold_constants(fold_shapes=True, error_ok=True, flatten_subgraphs=False)
    graph.cleanup(remove_unused_graph_inputs=False)
    folded = before - len(graph.nodes)

    bypassed = 0
    for node in list(graph.nodes):
        is_inference_dropout = node.op == "Dropout" and len(node.inputs) < 3
        if (node.op == "Identity" or is_inference_dropout) and _bypass(graph, node):
            bypassed += 1

    padded = 0
    for node in graph.nodes:
        if isinstance(rule_for(node.op), KernelRule):
            pads = explicit_pads(node)
            if pads is not None:
                node.attrs["pads"] = pads
                node.attrs.pop("auto_pad", None)
                padded += 1

    named = 0
    taken = {n.name for n in graph.nodes if n.name}
    seen: set[str] = set()
    for index, node in enumerate(graph.nodes):
        if not node.name or node.name in seen:
            name = f"{node.op}_{index}"
            while name in taken or name in seen:
                name += "_"
            node.name = name
            named += 1
        seen.add(node.name)

    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    report = NormalizeReport(folded, bypassed, padded, named)
    log.debug("normalize: %s", report)
    return report
