"""What a node computes: FLOP and byte counts per node, with one counting rule used everywhere.

The rule (docs/design.md §2): Conv, ConvTranspose, Gemm and MatMul count 2·MACs (bias adds are not
counted); every other op counts one FLOP per output element; Slice, Concat, Identity,
Reshape-like and shape ops count zero, since they only move data.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.passes.local_ops import batch_size

DATA_MOVEMENT_OPS = frozenset(
    {
        "Slice", "Concat", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
        "Transpose", "Shape", "Gather", "Constant", "Split", "Dropout", "Cast",
        "SpaceToDepth", "DepthToSpace", "Expand", "Size", "ConstantOfShape",
    }
)  # fmt: skip


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


def conv_macs_per_output_pixel(node: gs.Node) -> int:
    """MACs a Conv spends per output pixel over all batch items and output channels."""
    weight = node.inputs[1]
    out = node.outputs[0]
    c_out, c_in_per_group = int(weight.shape[0]), int(weight.shape[1])
    kernel = math.prod(int(k) for k in weight.shape[2:])
    return batch_size(out.shape[0]) * c_out * c_in_per_group * kernel


def flops_per_pixel(node: gs.Node) -> float:
    """FLOPs per output pixel (one H·W position) of a node with 4-D outputs, by the rule above:
    what `node_flops` gives divided by the output's H·W."""
    if node.op == "Conv":
        return 2.0 * conv_macs_per_output_pixel(node)
    if node.op in DATA_MOVEMENT_OPS:
        return 0.0
    return float(sum(batch_size(o.shape[0]) * int(o.shape[1]) for o in node.outputs if o.name))


def node_flops(node: gs.Node) -> float:
    """FLOPs of one node at the static shapes it has, by the module's counting rule.

    Args:
        node: a node whose tensors carry inferred shapes.

    Returns:
        The FLOP count; 0 when shapes are unknown or the op only moves data.
    """
    op = node.op
    if op in DATA_MOVEMENT_OPS:
        return 0.0
    try:
        if op == "Conv":
            out = node.outputs[0]
            return 2.0 * conv_macs_per_output_pixel(node) * math.prod(int(d) for d in out.shape[2:])
        if op == "ConvTranspose":
            x, w = node.inputs[0], node.inputs[1]
            return 2.0 * float(static_numel(x.shape)) * math.prod(int(d) for d in w.shape[1:])
        if op in ("Gemm", "MatMul"):
            a = node.inputs[0]
            out_numel = static_numel(node.outputs[0].shape)
            k = int(a.shape[-1]) if not node.attrs.get("transA", 0) else int(a.shape[-2])
            return 2.0 * float(out_numel) * k
    except (TypeError, ValueError, IndexError):
        return 0.0
    total = 0
    for out in node.outputs:
        if not out.name:  # an omitted optional output
            continue
        numel = static_numel(out.shape)
        if numel is None:
            return 0.0
        total += numel
    return float(total)
