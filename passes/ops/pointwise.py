"""Pointwise and channel ops: an output pixel reads the same pixel of its inputs.

Their axis maps are the identity, and a tile copy keeps the node's attributes and inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from flcompile.passes.ops.base import (
    IsSpatial,
    LocalOp,
    OpRule,
    Slots,
    constants_only_after_data,
    hw,
    is_constant,
    register,
)


def _broadcast_over_hw(tensor: gs.Constant) -> bool:
    """True when a constant has size 1 on H and W after numpy broadcasting against NCHW."""
    shape = tuple(tensor.shape)
    if len(shape) > 4:
        return False
    padded = (1,) * (4 - len(shape)) + shape
    return padded[2] == 1 and padded[3] == 1


@dataclass(frozen=True)
class UnaryRule(OpRule):
    """One tiled input; any further inputs (Clip bounds, BatchNormalization's) are constants.

    Attributes:
        training_outputs: more than one output means training mode (BatchNormalization,
            Dropout's mask).
    """

    training_outputs: bool = False

    def refuse_outputs(self, node: gs.Node, outputs: list[gs.Tensor]) -> str | None:
        """Training mode's extra outputs."""
        if self.training_outputs and len(outputs) > 1:
            return f"{node.op} in training mode"
        return None

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Local when its parameters are constants."""
        if not constants_only_after_data(node, spatial):
            return "its parameters are not constants"
        return LocalOp()


@dataclass(frozen=True)
class NaryRule(OpRule):
    """Elementwise with broadcasting: every input is tiled at the output's size or a constant
    that broadcasts over H and W."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Local when no input is broadcast over H or W."""
        out_hw = hw(next(o for o in node.outputs if o.name))
        for t in node.inputs:
            if not t.name:
                continue
            if is_spatial(t):
                if hw(t) != out_hw:
                    return f"its input {t.name} is broadcast over H/W"
            elif not (is_constant(t) and _broadcast_over_hw(t)):
                return f"its input {t.name} is neither tiled nor a constant broadcast over H/W"
        return LocalOp(spatial_inputs=spatial)


@dataclass(frozen=True)
class ChannelRule(OpRule):
    """Concat and Split along the channel axis."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Local along axis 1, with every Concat input tiled and constant Split sizes."""
        op = node.op
        rank = len(node.inputs[spatial[0]].shape)
        axis = int(node.attrs.get("axis", 0)) % rank
        if axis != 1:
            return f"{op} along axis {axis}, not the channel axis"
        if op == "Concat" and len(spatial) != len([t for t in node.inputs if t.name]):
            return "Concat of a tiled tensor with a constant"
        sizes = node.inputs[1] if op == "Split" and len(node.inputs) > 1 else None
        if sizes is not None and sizes.name and not is_constant(sizes):
            return "its split sizes are not a constant"
        return LocalOp(spatial_inputs=spatial)


register(
    UnaryRule(),
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu",
    "Softplus", "LRN", "Abs", "Neg", "Exp", "Sqrt", "Erf", "Mish", "Softsign", "Celu",
    "ThresholdedRelu", "Gelu", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
)  # fmt: skip
register(UnaryRule(training_outputs=True), "BatchNormalization")
register(UnaryRule(flops_per_element=0.0), "Identity")
register(UnaryRule(flops_per_element=0.0, training_outputs=True), "Dropout")
register(NaryRule(), "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "PRelu")
register(ChannelRule(flops_per_element=0.0), "Concat", "Split")
