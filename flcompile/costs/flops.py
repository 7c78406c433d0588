"""What a node computes: FLOP and byte counts per node, with one counting rule used everywhere.

The rule (docs/design.md §2): Conv, ConvTranspose, Gemm and MatMul count 2·MACs (bias adds are not
counted); every other op counts one FLOP per output element; Slice, Concat, Identity,
Reshape-like and shape ops count zero, since they only move data. An op with a rule in
`flcompile.passes.ops` counts what its rule says (`flops_per_element`, times the fan-in for
Conv); the ops below without one (ConvTranspose, Gemm, MatMul, the data movers) are counted here.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.passes.local_ops import batch_size
from flcompile.passes.ops import rule_for

DATA_MOVEMENT_OPS = frozenset(
    {
        "Slice",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Transpose",
        "Shape",
        "Gather",
        "Constant",
        "Cast",
        "Expand",
        "Size",
        "ConstantOfShape",
    }
)  # fmt: skip  -- ops without a rule; Concat, Identity, DepthToSpace, ... say 0 in theirs


def static_numel(shape: object) -> int | None:
    """Number of elements of a static shape (a symbolic batch counts 1), or None if unknown."""
    if shape is None:
        return None
    dims = list(shape)
    if dims:
        dims[0] = batch_size(dims[0])
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
        return None
    return math.prod(int(d) for d in dims)


def tensor_bytes(tensor: gs.Tensor) -> int | None:
    """Bytes of a tensor with a static shape, or None when its shape or dtype is unknown."""
    numel = static_numel(tensor.shape)
    if numel is None or tensor.dtype is None:
        return None
    return numel * np.dtype(tensor.dtype).itemsize


def fan_in(node: gs.Node) -> int:
    """Weights per output channel of a Conv: C_in/group · kernel (its MACs per output element)."""
    weight = node.inputs[1]
    return int(weight.shape[1]) * math.prod(int(k) for k in weight.shape[2:])


def flops_per_element(node: gs.Node) -> float | None:
    """FLOPs per output element by the node's op rule, or None for an op without one."""
    rule = rule_for(node.op)
    if rule is None:
        return None
    return rule.flops_per_element * fan_in(node) if rule.times_fan_in else rule.flops_per_element


def flops_per_pixel(node: gs.Node) -> float:
    """FLOPs per output pixel (one H·W position) of a node with 4-D outputs, by the rule above:
    what `node_flops` gives divided by the output's H·W."""
    per_element = flops_per_element(node)
    if per_element is None:
        per_element = 0.0 if node.op in DATA_MOVEMENT_OPS else 1.0
    channels = sum(batch_size(o.shape[0]) * int(o.shape[1]) for o in node.outputs if o.name)
    return per_element * channels


def node_flops(node: gs.Node) -> float:
    """FLOPs of one node at the static shapes it has, by the module's counting rule.

    Args:
        node: a node whose tensors carry inferred shapes.

    Returns:
        The FLOP count; 0 when shapes are unknown or the op only moves data.
    """
    op = node.op
    try:
        per_element = flops_per_element(node)
        if per_element is None and op in DATA_MOVEMENT_OPS:
            return 0.0
        if per_element is None and op == "ConvTranspose":
            x, w = node.inputs[0], node.inputs[1]
            return 2.0 * float(static_numel(x.shape)) * math.prod(int(d) for d in w.shape[1:])
        if per_element is None and op in ("Gemm", "MatMul"):
            a = node.inputs[0]
            out_numel = static_numel(node.outputs[0].shape)
            k = int(a.shape[-1]) if not node.attrs.get("transA", 0) else int(a.shape[-2])
            return 2.0 * float(out_numel) * k
    except (TypeError, ValueError, IndexError):
        return 0.0
    numels = [static_numel(out.shape) for out in node.outputs if out.name]  # "": omitted
    if any(n is None for n in numels):
        return 0.0
    return (1.0 if per_element is None else per_element) * sum(numels)
