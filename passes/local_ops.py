"""Which ops are local (docs/design.md §1) and, for each, the per-axis map from output to input.

`classify(node, is_spatial)` runs the checks every local op shares, then asks the op's rule
(`flcompile.passes.ops`). It returns a `LocalOp` or, when the op cannot be tiled, the reason
as a string (it never raises for an unsupported op: the fusable region simply ends there). A
Conv or pool whose inferred output size is not what onnxruntime computes is not tiled either;
`misinferred_tensors` names every tensor whose inferred shape such a node makes wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.passes.ops import AxisRepeat as AxisRepeat  # re-exported with the maps
from flcompile.passes.ops import AxisWindow as AxisWindow
from flcompile.passes.ops import LocalOp, hw, rule_for

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
GLOBAL_POOLS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})


def batch_size(dim: object) -> int:
    """A batch dim as a count: a symbolic batch counts as 1, so costs are per batch item."""
    return int(dim) if isinstance(dim, (int, np.integer)) else 1


def is_float(tensor: gs.Tensor) -> bool:
    """True for float16/32/64 tensors."""
    return tensor.dtype is not None and np.dtype(tensor.dtype) in [
        np.dtype(t) for t in FLOAT_DTYPES
    ]


def misinferred_tensors(graph: gs.Graph) -> dict[str, str]:
    """The tensors whose inferred shape onnxruntime does not compute, each with the reason.

    A node whose rule reports an `inferred_size_mismatch` (a ceil_mode pool) starts it; every
    tensor computed from such a tensor inherits it, up to a global pool, whose 1×1 output is
    right whatever the size of its input.

    Args:
        graph: a toposorted graph with inferred shapes.

    Returns:
        tensor name -> "node (op): reason".
    """
    wrong: dict[str, str] = {}
    for node in graph.nodes:
        reason = next((wrong[t.name] for t in node.inputs if t.name in wrong), None)
        rule = rule_for(node.op)
        if reason is None and rule is not None:
            mismatch = rule.inferred_size_mismatch(node)
            reason = f"{node.name} ({node.op}): {mismatch}" if mismatch else None
        if reason is not None and node.op not in GLOBAL_POOLS:
            wrong.update({o.name: reason for o in node.outputs if o.name})
    return wrong


def classify(node: gs.Node, is_spatial: Callable[[gs.Tensor], bool]) -> LocalOp | str:
    """Decide whether `node` is local and how it maps regions.

    Args:
        node: a node with inferred shapes.
        is_spatial: tells whether a tensor is a tiled tensor of the fusable prefix.

    Returns:
        The node's `LocalOp`, or a short reason why it ends the fusable region.
    """
    op = node.op
    if node.domain not in (None, "", "ai.onnx"):
        return f"custom-domain op {node.domain}.{op}"
    rule = rule_for(op)
    outputs = [o for o in node.outputs if o.name]
    # Checked before the outputs: extra outputs (indices, masks) are not 4-D float tensors.
    refused = rule.refuse_outputs(node, outputs) if rule is not None else None
    if refused:
        return refused
    if not outputs or any(hw(o) is None for o in outputs):
        return "its output is not a 4-D tensor with static H and W"
    if not all(is_float(o) for o in outputs):
        return "its output is not floating point"
    spatial = tuple(i for i, t in enumerate(node.inputs) if t.name and is_spatial(t))
    if not spatial:
        return "it reads no tensor of the fusable region"
    if rule is None:
        return f"{op} is not a local op"
    return rule.local(node, spatial, is_spatial)
