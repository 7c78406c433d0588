"""Window ops: an output pixel reads a kernel window of the input (Conv, pools, Pad, SpaceToDepth).

A tile copy gets its own pads along H and W (zero at interior borders), so it computes its
region of the output exactly as the whole op would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.passes.ops.axes import AxisWindow
from flcompile.passes.ops.base import (
    IsSpatial,
    LocalOp,
    OpRule,
    Slots,
    attr_text,
    constants_only_after_data,
    hw,
    is_constant,
    register,
)


def kernel_windows(node: gs.Node) -> tuple[AxisWindow, AxisWindow] | str:
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


@dataclass(frozen=True)
class KernelRule(OpRule):
    """Conv and the pools: a kernel window with strides, dilations and explicit pads.

    Attributes:
        pool: a pool (ceil_mode and its overhang apply), not a Conv.
        ceil_mode: the op accepts ceil_mode=1 (LpPool is refused it: not verified).
    """

    pool: bool = True
    ceil_mode: bool = True

    def refuse_outputs(self, node: gs.Node, outputs: list[gs.Tensor]) -> str | None:
        """A MaxPool's Indices output depends on absolute positions."""
        if len(outputs) > 1:
            return f"{node.op} with an Indices output depends on absolute positions"
        return None

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Local with its kernel windows, unless its weights vary or its pads are implicit."""
        if not constants_only_after_data(node, spatial):
            return "its weights are not constants"
        if attr_text(node, "auto_pad", "NOTSET") != "NOTSET":
            return "auto_pad could not be resolved to explicit pads"
        if not self.ceil_mode and node.attrs.get("ceil_mode", 0):
            return f"{node.op} with ceil_mode=1 is not supported"
        windows = kernel_windows(node)
        if isinstance(windows, str):
            return windows
        return self.inferred_size_mismatch(node) or LocalOp(*windows)

    def inferred_size_mismatch(self, node: gs.Node) -> str | None:
        """Why the node's inferred output H×W is not what onnxruntime computes, or None.

        onnx shape inference (1.23) keeps a ceil_mode window that would start in the end
        padding, which the ONNX spec and onnxruntime drop: the model then declares a size it
        does not compute, and tiles sized by it would not fit together.

        Args:
            node: a node of this rule with explicit pads and inferred shapes.

        Returns:
            The reason, or None when the sizes agree or are not all known.
        """
        if attr_text(node, "auto_pad", "NOTSET") != "NOTSET":
            return None  # normalize resolves auto_pad; such a node is refused elsewhere
        size, inferred = hw(node.inputs[0]), hw(node.outputs[0])
        windows = kernel_windows(node)
        if size is None or inferred is None or isinstance(windows, str):
            return None
        ceil_mode = bool(node.attrs.get("ceil_mode", 0))
        rule = tuple(w.output_size(n, ceil_mode) for w, n in zip(windows, size, strict=True))
        if rule == inferred:
            return None
        why = " (a ceil_mode window would start in the end padding)" if ceil_mode else ""
        return (
            f"onnx shape inference gives it {inferred[0]}x{inferred[1]} outputs where "
            f"onnxruntime computes {rule[0]}x{rule[1]}{why}"
        )

    def tile(
        self, node: gs.Node, pads_h: tuple[int, int], pads_w: tuple[int, int], path: int
    ) -> tuple[dict, list[gs.Tensor]]:
        """The tile's pads; a pool tile that ends in a ceil_mode overhang keeps it.

        A pool's ceil_mode window can run past the end pad (the overhang). A tile end pad
        that held the overhang could reach the kernel size (with dilations), which
        onnxruntime refuses, and AveragePool with count_include_pad=1 would count it. So a
        tile that ends in an overhang keeps ceil_mode and the original end pad there:
        relative to the end of the input, its windows are then the original ones. Every
        other tile side fits its windows exactly (its size is (n − 1)·s + span), where
        ceil_mode changes nothing.
        """
        attrs = dict(node.attrs)
        pads = [pads_h[0], pads_w[0], pads_h[1], pads_w[1]]
        attrs.pop("auto_pad", None)
        original = list(node.attrs.get("pads", [0, 0, 0, 0]))
        overhang = [pads[i] > original[i] for i in range(4)]
        if self.pool:
            if any(overhang) or "ceil_mode" in node.attrs:  # the attribute exists from opset 10
                attrs["ceil_mode"] = int(any(overhang))
            pads = [original[i] if overhang[i] else pads[i] for i in range(4)]
        attrs["pads"] = pads
        return attrs, list(node.inputs)


def pad_amounts(node: gs.Node) -> list[int] | str:
    """A Pad node's 8 pads (begins then ends, NCHW), or why they are not constant."""
    if "pads" in node.attrs:  # opset < 11
        pads = list(node.attrs["pads"])
    else:
        if len(node.inputs) < 2 or not is_constant(node.inputs[1]):
            return "its pads are not a constant"
        pads = [int(v) for v in np.asarray(node.inputs[1].values).ravel()]
    if len(node.inputs) > 2 and node.inputs[2].name and not is_constant(node.inputs[2]):
        return "its constant_value is not a constant"
    if len(node.inputs) > 3 and node.inputs[3].name:
        if not is_constant(node.inputs[3]):
            return "its axes are not a constant"
        axes = [int(a) % 4 for a in np.asarray(node.inputs[3].values).ravel()]
        full = [0] * 8
        for i, axis in enumerate(axes):
            full[axis], full[axis + 4] = pads[i], pads[i + len(axes)]
        pads = full
    if len(pads) != 8:
        return f"it pads {len(pads) // 2} axes, not 4"
    return pads


@dataclass(frozen=True)
class PadRule(OpRule):
    """Constant Pad: a 1×1 window with the pads as its border."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Local when the mode is constant and the pads are constants."""
        mode = attr_text(node, "mode", "constant")
        if mode != "constant":
            return f"Pad mode '{mode}' reads mirrored or edge pixels"
        pads = pad_amounts(node)
        if isinstance(pads, str):
            return pads
        h = AxisWindow(pad_begin=pads[2], pad_end=pads[6])
        w = AxisWindow(pad_begin=pads[3], pad_end=pads[7])
        return LocalOp(h, w)

    def tile(
        self, node: gs.Node, pads_h: tuple[int, int], pads_w: tuple[int, int], path: int
    ) -> tuple[dict, list[gs.Tensor]]:
        """The tile's H and W pads, as an attribute (opset < 11) or a new pads constant."""
        attrs, inputs = dict(node.attrs), list(node.inputs)
        full = list(pad_amounts(node))
        full[2], full[3], full[6], full[7] = pads_h[0], pads_w[0], pads_h[1], pads_w[1]
        if "pads" in node.attrs:
            attrs["pads"] = full
            return attrs, inputs
        value = inputs[2] if len(inputs) > 2 else gs.Variable.empty()
        pads = gs.Constant(f"{node.name}/p{path}/pads", np.asarray(full, dtype=np.int64))
        return attrs, [inputs[0], pads, value] if value.name else [inputs[0], pads]


@dataclass(frozen=True)
class SpaceToDepthRule(OpRule):
    """SpaceToDepth: a b×b window with stride b."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Always local."""
        b = int(node.attrs["blocksize"])
        return LocalOp(AxisWindow(b, b), AxisWindow(b, b))


register(KernelRule(flops_per_element=2.0, times_fan_in=True, pool=False), "Conv")
register(KernelRule(), "MaxPool", "AveragePool")
# p-norm over the window; counted one FLOP per output element, as every pool is.
register(KernelRule(ceil_mode=False), "LpPool")
register(PadRule(), "Pad")
register(SpaceToDepthRule(flops_per_element=0.0), "SpaceToDepth")
