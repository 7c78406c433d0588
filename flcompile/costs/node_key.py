"""A node's law key: what kind of node it is for a measured cost law.

The key is the op type, with the kernel size for windowed ops ("Conv 3x3", "MaxPool 3x3")
and " grouped" for a grouped convolution: their speed per FLOP differs with the kernel,
while within one kernel size seconds grow linearly with FLOPs and bytes. The op type is the
key's first word (`op_type_of`), the next law to fall back on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.costs.flops import tensor_bytes

#: The key of the law fitted over every node, the last fallback (no op type is spelled so).
OVERALL = "*"

WINDOW_OPS = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"})


def node_key(node: gs.Node) -> str:
    """The law key of a node.

    Args:
        node: a node (a Conv's kernel is read from its weight when it has no attribute).

    Returns:
        e.g. "Conv 3x3", "Conv 3x3 grouped", "MaxPool 2x2", "Relu".
    """
    if node.op not in WINDOW_OPS:
        return node.op
    kernel = node.attrs.get("kernel_shape")
    if not kernel and len(node.inputs) > 1 and node.inputs[1].shape is not None:
        kernel = list(node.inputs[1].shape[2:])
    if not kernel or not all(isinstance(k, (int, np.integer)) for k in kernel):
        return node.op
    key = f"{node.op} {'x'.join(str(k) for k in kernel)}"
    return key + " grouped" if int(node.attrs.get("group", 1)) > 1 else key


def op_type_of(key: str) -> str:
    """The op type of a law key."""
    return key.split(" ", 1)[0]


def resolve_law(laws: Mapping[str, object], key: str) -> str | None:
    """The key of the law that prices a node of `key`: its own, its op type's, the overall
    law (`OVERALL`), or None when `laws` has none of them."""
    for candidate in (key, op_type_of(key), OVERALL):
        if candidate in laws:
            return candidate
    return None


def counts_inputs(op: str) -> bool:
    """Whether a node's bytes count its inputs: not a Slice's, which reads only what it
    copies out of a larger tensor."""
    return op != "Slice"


def activation_bytes(node: gs.Node) -> float:
    """Bytes of the activations a node reads and writes (constants and unknown shapes: 0)."""
    tensors = [t for t in node.outputs if t.name]
    if counts_inputs(node.op):
        tensors += [t for t in node.inputs if t.name and not isinstance(t, gs.Constant)]
    return float(sum(tensor_bytes(t) or 0 for t in tensors))
