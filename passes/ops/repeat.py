"""Upsampling ops: output pixel h reads input pixel ⌊h / s⌋ for an integer factor s.

DepthToSpace (s = blocksize) and nearest-neighbour Resize / Upsample with integer scales.
A tile of input rows [a, b) computes output rows [a·s, b·s); a consumer that wants fewer
crops them.

What Resize and Upsample accept (anything else is refused with the reason):
- Resize (opset ≥ 11): mode "nearest", coordinate_transformation_mode "asymmetric",
  nearest_mode "floor", no `axes` attribute, keep_aspect_ratio_policy "stretch"; constant
  scales [1, 1, s_h, s_w] or constant sizes [N, C, s_h·H, s_w·W] with integers s ≥ 1.
  Resize-10 (two inputs) is refused: it rounds to the nearest pixel rather than down.
- Upsample (opset 7–9): mode "nearest" with scales [1, 1, s_h, s_w] (an attribute in
  opset 7, a constant input from opset 9).
Both count one FLOP per output element, as every op without its own rule does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.errors import InternalError
from flcompile.passes.ops.axes import AxisRepeat
from flcompile.passes.ops.base import (
    IsSpatial,
    LocalOp,
    OpRule,
    Slots,
    attr_text,
    constants_only_after_data,
    hw,
    register,
)

RESIZE_ATTRS = (
    ("mode", "nearest", "nearest"),
    ("coordinate_transformation_mode", "half_pixel", "asymmetric"),
    ("nearest_mode", "round_prefer_floor", "floor"),
    ("keep_aspect_ratio_policy", "stretch", "stretch"),
)


@dataclass(frozen=True)
class DepthToSpaceRule(OpRule):
    """DepthToSpace: output pixel h reads input pixel ⌊h / blocksize⌋."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Always local."""
        b = int(node.attrs["blocksize"])
        return LocalOp(AxisRepeat(b), AxisRepeat(b))


def _given(node: gs.Node, index: int) -> gs.Tensor | None:
    """Input `index` when the node has it (and it is not an omitted optional input)."""
    return node.inputs[index] if len(node.inputs) > index and node.inputs[index].name else None


def integer_factors(node: gs.Node) -> tuple[int, int] | str:
    """The (H, W) factors of a Resize or Upsample with constant integer scales or sizes.

    Args:
        node: a Resize (opset ≥ 11) or Upsample node with inferred shapes.

    Returns:
        (s_h, s_w), or why the scales are not [1, 1, s_h, s_w] with integers s ≥ 1.
    """
    size, out = hw(node.inputs[0]), hw(node.outputs[0])
    if node.op == "Upsample" and "scales" in node.attrs:  # opset 7
        scales = np.asarray(node.attrs["scales"], float)
    else:
        tensor = _given(node, 1 if node.op == "Upsample" else 2)
        sizes = _given(node, 3) if node.op == "Resize" else None
        if tensor is not None and np.asarray(tensor.values).size:
            scales = np.asarray(tensor.values, float).ravel()
        elif sizes is not None and size is not None:
            wanted = np.asarray(sizes.values).ravel()
            if len(wanted) != 4:
                return f"its sizes have {len(wanted)} entries, not 4"
            shape = node.inputs[0].shape
            dims = [d if isinstance(d, int) else np.nan for d in shape[:2]]  # symbolic: refused
            scales = np.array([wanted[0] / dims[0], wanted[1] / dims[1],
                               wanted[2] / size[0], wanted[3] / size[1]])  # fmt: skip
        else:
            return "it has neither scales nor sizes"
    if len(scales) != 4:
        return f"its scales have {len(scales)} entries, not 4"
    whole = all(np.isfinite(s) and s == int(s) and s >= 1 for s in scales[2:])
    if scales[0] != 1 or scales[1] != 1 or not whole:
        return f"its scales {scales.tolist()} are not [1, 1, s_h, s_w] with integers s >= 1"
    factors = int(scales[2]), int(scales[3])
    if size is None or out != (size[0] * factors[0], size[1] * factors[1]):
        return "its output is not its input scaled by its integer factors"
    return factors


@dataclass(frozen=True)
class NearestUpsampleRule(OpRule):
    """Nearest-neighbour Resize (opset ≥ 11) and Upsample (opset 7–9) by integer factors."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Local when it repeats each pixel s_h×s_w times (see the module docstring)."""
        if not constants_only_after_data(node, spatial):
            return "its scales or sizes are not constants"
        if node.op == "Resize":
            if len(node.inputs) < 3:
                return "Resize-10 rounds to the nearest pixel, not down (use opset >= 11)"
            if "axes" in node.attrs:
                return "Resize with an axes attribute is not supported"
            for name, default, wanted in RESIZE_ATTRS:
                value = attr_text(node, name, default)
                if value != wanted:
                    return f"Resize with {name} '{value}' (only '{wanted}' is supported)"
        elif attr_text(node, "mode", "nearest") != "nearest":
            return f"Upsample mode '{attr_text(node, 'mode', 'nearest')}' interpolates"
        factors = integer_factors(node)
        if isinstance(factors, str):
            return factors
        return LocalOp(AxisRepeat(factors[0]), AxisRepeat(factors[1]))

    def tile(
        self, node: gs.Node, pads_h: tuple[int, int], pads_w: tuple[int, int], path: int
    ) -> tuple[dict, list[gs.Tensor]]:
        """A Resize given sizes gets its tile's scales instead (sizes are the whole output's)."""
        inputs = list(node.inputs)
        if node.op == "Resize" and _given(node, 3) is not None:
            factors = integer_factors(node)
            if isinstance(factors, str):
                raise InternalError(f"{node.name} is not a local Resize: {factors}")
            values = np.array([1, 1, *factors], np.float32)
            inputs = [inputs[0], inputs[1], gs.Constant(f"{node.name}/p{path}/scales", values)]
        return dict(node.attrs), inputs


register(DepthToSpaceRule(flops_per_element=0.0), "DepthToSpace")
register(NearestUpsampleRule(), "Resize", "Upsample")
