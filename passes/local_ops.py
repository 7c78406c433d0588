"""Which ops are local (docs/design.md §1) and, for each, the per-axis window from output to input.

`classify(node, is_spatial)` returns a `LocalOp` or, when the op cannot be tiled, the reason as
a string (it never raises for an unsupported op: the fusable region simply ends there). A Conv
or pool whose inferred output size is not what onnxruntime computes is not tiled either;
`misinferred_tensors` names every tensor whose inferred shape such a node makes wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

POINTWISE_UNARY = frozenset(
    {
        "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
        "Selu", "Softplus", "Identity", "Dropout", "BatchNormalization", "LRN", "Abs", "Neg",
        "Exp", "Sqrt", "Erf", "Mish", "Softsign", "Celu", "ThresholdedRelu", "Gelu",
        "Reciprocal", "Floor", "Ceil", "Round", "Sign",
    }
)  # fmt: skip
POINTWISE_NARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "PRelu"})
FLOAT_DTYPES = (np.float16, np.float32, np.float64)
WINDOW_OPS = frozenset({"Conv", "MaxPool", "AveragePool"})
GLOBAL_POOLS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})


@dataclass(frozen=True)
class AxisWindow:
    """The window of one spatial axis.

    Output o reads input [o·s − p_begin, o·s − p_begin + d·(k−1) + 1).

    `pad_end` is the op's original trailing pad, kept for ceil_mode and count_include_pad.
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad_begin: int = 0
    pad_end: int = 0

    @property
    def span(self) -> int:
        """d·(k − 1) + 1, the input extent of one output pixel."""
        return self.dilation * (self.kernel - 1) + 1

    def output_size(self, size: int, ceil_mode: bool = False) -> int:
        """The output length over an input of `size`, by the ONNX rule that onnxruntime follows.

        Under ceil_mode the last window may run past the end pad, but a window that would
        start in the end padding is dropped.

        Args:
            size: the input's length along this axis.
            ceil_mode: the op's ceil_mode.

        Returns:
            The number of windows.
        """
        room = size + self.pad_begin + self.pad_end - self.span
        if not ceil_mode:
            return room // self.stride + 1
        out = -(-room // self.stride) + 1
        if (out - 1) * self.stride >= size + self.pad_begin:
            out -= 1
        return out


@dataclass(frozen=True)
class LocalOp:
    """How a local node maps regions of its output back onto its spatial inputs.

    Attributes:
        kind: "window" (Conv, pools, Pad, SpaceToDepth), "pointwise" (region passes through)
            or "depth_to_space" (output pixel h reads input h // block).
        h: the H-axis window (identity for pointwise ops).
        w: the W-axis window.
        block: DepthToSpace's block size.
        spatial_inputs: indices of the node's inputs that are tiled tensors.
    """

    kind: str
    h: AxisWindow = AxisWindow()
    w: AxisWindow = AxisWindow()
    block: int = 1
    spatial_inputs: tuple[int, ...] = (0,)


def hw(tensor: gs.Tensor) -> tuple[int, int] | None:
    """(H, W) of a static 4-D tensor, or None."""
    shape = tensor.shape
    if shape is None or len(shape) != 4:
        return None
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int):
        return h, w
    return None


def batch_size(dim: object) -> int:
    """A batch dim as a count: a symbolic batch counts as 1, so costs are per batch item."""
    return int(dim) if isinstance(dim, (int, np.integer)) else 1


def is_float(tensor: gs.Tensor) -> bool:
    """True for float16/32/64 tensors."""
    return tensor.dtype is not None and np.dtype(tensor.dtype) in [
        np.dtype(t) for t in FLOAT_DTYPES
    ]


def _constant(tensor: gs.Tensor) -> bool:
    return isinstance(tensor, gs.Constant)


def _broadcast_over_hw(tensor: gs.Constant) -> bool:
    """True when a constant has size 1 on H and W after numpy broadcasting against NCHW."""
    shape = tuple(tensor.shape)
    if len(shape) > 4:
        return False
    padded = (1,) * (4 - len(shape)) + shape
    return padded[2] == 1 and padded[3] == 1


def _window(node: gs.Node) -> tuple[AxisWindow, AxisWindow] | str:
    """The (H, W) windows of a Conv or pool with explicit pads, or why it has none."""
    kernel = node.attrs.get("kernel_shape") or list(node.inputs[1].shape or [])[2:]
    if len(kernel) != 2:
        return f"it is {len(kernel)}-D, not 2-D"
    strides = node.attrs.get("strides", [1, 1])
    dilations = node.attrs.get("dilations", [1, 1])
    pads = node.attrs.get("pads", [0, 0, 0, 0])
    axes = [
        AxisWindow(
            int(kernel[i]), int(strides[i]), int(dilations[i]), int(pads[i]), int(pads[i + 2])
        )
        for i in range(2)
    ]
    return axes[0], axes[1]


def inferred_size_mismatch(node: gs.Node) -> str | None:
    """Why a Conv or pool's inferred output H×W is not what onnxruntime computes, or None.

    onnx shape inference (1.23) keeps a ceil_mode window that would start in the end
    padding, which the ONNX spec and onnxruntime drop: the model then declares a size it does
    not compute, and tiles sized by it would not fit together.

    Args:
        node: a Conv, MaxPool or AveragePool with explicit pads and inferred shapes.

    Returns:
        The reason, or None when the sizes agree or are not all known.
    """
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return None  # normalize resolves auto_pad; such a node is refused elsewhere
    size, inferred = hw(node.inputs[0]), hw(node.outputs[0])
    windows = _window(node)
    if size is None or inferred is None or isinstance(windows, str):
        return None
    ceil_mode = bool(node.attrs.get("ceil_mode", 0))
    rule = tuple(w.output_size(n, ceil_mode) for w, n in zip(windows, size, strict=True))
    if rule == inferred:
        return None
    why = " (a ceil_mode window would start in the end padding)" if ceil_mode else ""
    return (
        f"onnx shape inference gives it {inferred[0]}x{inferred[1]} outputs where onnxruntime "
        f"computes {rule[0]}x{rule[1]}{why}"
    )


def misinferred_tensors(graph: gs.Graph) -> dict[str, str]:
    """The tensors whose inferred shape onnxruntime does not compute, each with the reason.

    A Conv or pool that `inferred_size_mismatch` flags starts it; every tensor computed from
    such a tensor inherits it, up to a global pool, whose 1×1 output is right whatever the
    size of its input.

    Args:
        graph: a toposorted graph with inferred shapes.

    Returns:
        tensor name -> "node (op): reason".
    """
    wrong: dict[str, str] = {}
    for node in graph.nodes:
        reason = next((wrong[t.name] for t in node.inputs if t.name in wrong), None)
        if reason is None and node.op in WINDOW_OPS:
            mismatch = inferred_size_mismatch(node)
            reason = f"{node.name} ({node.op}): {mismatch}" if mismatch else None
        if reason is not None and node.op not in GLOBAL_POOLS:
            wrong.update({o.name: reason for o in node.outputs if o.name})
    return wrong


def pad_amounts(node: gs.Node) -> list[int] | str:
    """A Pad node's 8 pads (begins then ends, NCHW), or why they are not constant."""
    if "pads" in node.attrs:  # opset < 11
        pads = list(node.attrs["pads"])
    else:
        if len(node.inputs) < 2 or not _constant(node.inputs[1]):
            return "its pads are not a constant"
        pads = [int(v) for v in np.asarray(node.inputs[1].values).ravel()]
    if len(node.inputs) > 2 and node.inputs[2].name and not _constant(node.inputs[2]):
        return "its constant_value is not a constant"
    if len(node.inputs) > 3 and node.inputs[3].name:
        if not _constant(node.inputs[3]):
            return "its axes are not a constant"
        axes = [int(a) % 4 for a in np.asarray(node.inputs[3].values).ravel()]
        full = [0] * 8
        for i, axis in enumerate(axes):
            full[axis], full[axis + 4] = pads[i], pads[i + len(axes)]
        pads = full
    if len(pads) != 8:
        return f"it pads {len(pads) // 2} axes, not 4"
    return pads


def classify(node: gs.Node, is_spatial: callable) -> LocalOp | str:  # type: ignore[valid-type]
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
    outputs = [o for o in node.outputs if o.name]
    # Checked before the outputs: these extra outputs are not 4-D float tensors.
    if op == "MaxPool" and len(outputs) > 1:
        return "MaxPool with an Indices output depends on absolute positions"
    if op in ("BatchNormalization", "Dropout") and len(outputs) > 1:
        return f"{op} in training mode"
    if not outputs or any(hw(o) is None for o in outputs):
        return "its output is not a 4-D tensor with static H and W"
    if not all(is_float(o) for o in outputs):
        return "its output is not floating point"
    spatial = tuple(i for i, t in enumerate(node.inputs) if t.name and is_spatial(t))
    if not spatial:
        return "it reads no tensor of the fusable region"
    data = node.inputs[spatial[0]]

    if op in WINDOW_OPS:
        if spatial != (0,) or any(not _constant(t) for t in node.inputs[1:] if t.name):
            return "its weights are not constants"
        if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
            return "auto_pad could not be resolved to explicit pads"
        windows = _window(node)
        if isinstance(windows, str):
            return windows
        return inferred_size_mismatch(node) or LocalOp("window", *windows)
    if op == "Pad":
        mode = node.attrs.get("mode", "constant")
        if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
            return f"Pad mode '{mode}' reads mirrored or edge pixels"
        pads = pad_amounts(node)
        if isinstance(pads, str):
            return pads
        h = AxisWindow(pad_begin=pads[2], pad_end=pads[6])
        w = AxisWindow(pad_begin=pads[3], pad_end=pads[7])
        return LocalOp("window", h, w)
    if op == "SpaceToDepth":
        b = int(node.attrs["blocksize"])
        return LocalOp("window", AxisWindow(b, b), AxisWindow(b, b))
    if op == "DepthToSpace":
        return LocalOp("depth_to_space", block=int(node.attrs["blocksize"]))
    if op in POINTWISE_UNARY:
        if spatial != (0,) or any(not _constant(t) for t in node.inputs[1:] if t.name):
            return "its parameters are not constants"
        return LocalOp("pointwise")
    if op in POINTWISE_NARY:
        out_hw = hw(outputs[0])
        for t in node.inputs:
            if not t.name:
                continue
            if is_spatial(t):
                if hw(t) != out_hw:
                    return f"its input {t.name} is broadcast over H/W"
            elif not (_constant(t) and _broadcast_over_hw(t)):
                return f"its input {t.name} is neither tiled nor a constant broadcast over H/W"
        return LocalOp("pointwise", spatial_inputs=spatial)
    if op in ("Concat", "Split"):
        rank = len(data.shape)
        axis = int(node.attrs.get("axis", 0)) % rank
        if axis != 1:
            return f"{op} along axis {axis}, not the channel axis"
        if op == "Concat" and len(spatial) != len([t for t in node.inputs if t.name]):
            return "Concat of a tiled tensor with a constant"
        if (
            op == "Split"
            and len(node.inputs) > 1
            and node.inputs[1].name
            and not _constant(node.inputs[1])
        ):
            return "its split sizes are not a constant"
        return LocalOp("pointwise", spatial_inputs=spatial)
    return f"{op} is not a local op"
