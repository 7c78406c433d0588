"""The op-rule interface and its registry: everything the passes and costs know about one op.

An `OpRule` says, for the ops registered to it:
    local(node, spatial, is_spatial)   whether a node is local, and its per-axis maps (`LocalOp`)
    tile(node, pads_h, pads_w, path)   how a tile copy rewrites its attributes and inputs
    flops_per_element, times_fan_in    its FLOPs per output element, as data for the cost layer

`register(rule, *ops)` makes one entry per op type, as onnx-graphsurgeon's `Graph.register`
registers a function under an op's name; `rule_for(op)` looks one up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import onnx_graphsurgeon as gs

from flcompile.errors import InternalError
from flcompile.passes.ops.axes import AxisRepeat, AxisWindow

AxisMap = AxisWindow | AxisRepeat
IsSpatial = Callable[[gs.Tensor], bool]
Slots = tuple[int, ...]
IDENTITY = AxisWindow()  # the map of a pointwise op


@dataclass(frozen=True)
class LocalOp:
    """How a local node maps regions of its output back onto its spatial inputs.

    Attributes:
        h: the H-axis map (the identity window for pointwise ops).
        w: the W-axis map.
        spatial_inputs: indices of the node's inputs that are tiled tensors.
    """

    h: AxisMap = IDENTITY
    w: AxisMap = IDENTITY
    spatial_inputs: tuple[int, ...] = (0,)

    def axis(self, axis: int) -> AxisMap:
        """The map along axis 0 (H) or 1 (W)."""
        return self.h if axis == 0 else self.w


def hw(tensor: gs.Tensor) -> tuple[int, int] | None:
    """(H, W) of a static 4-D tensor, or None."""
    shape = tensor.shape
    if shape is None or len(shape) != 4:
        return None
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int):
        return h, w
    return None


def is_constant(tensor: gs.Tensor) -> bool:
    """True for a graph constant (an initializer)."""
    return isinstance(tensor, gs.Constant)


def attr_text(node: gs.Node, name: str, default: str) -> str:
    """A string attribute as text (onnx-graphsurgeon may hand back bytes)."""
    value = node.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def constants_only_after_data(node: gs.Node, spatial: tuple[int, ...]) -> bool:
    """True when input 0 is the only tiled input and every other given input is a constant."""
    return spatial == (0,) and all(is_constant(t) for t in node.inputs[1:] if t.name)


@dataclass(frozen=True)
class OpRule:
    """One op family's knowledge; subclasses override `local` and, where needed, `tile`.

    Attributes:
        flops_per_element: FLOPs per output element (docs/design.md §2's counting rule).
        times_fan_in: multiply by the weights per output channel (C_in/group · kernel), so a
            Conv's 2 counts 2·MACs.
    """

    flops_per_element: float = 1.0
    times_fan_in: bool = False

    def refuse_outputs(self, node: gs.Node, outputs: list[gs.Tensor]) -> str | None:
        """Why extra outputs (checked before the common 4-D float output checks) rule it out."""
        return None

    def inferred_size_mismatch(self, node: gs.Node) -> str | None:
        """Why onnx infers another output H×W than onnxruntime computes, or None (the default)."""
        return None

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """The node's `LocalOp`, or why it is not local.

        Args:
            node: a node with static 4-D float outputs that reads a tiled tensor.
            spatial: the indices of its tiled inputs.
            is_spatial: tells whether any tensor is tiled.

        Returns:
            The `LocalOp` or a short reason.
        """
        raise NotImplementedError(type(self).__name__)

    def tile(
        self, node: gs.Node, pads_h: tuple[int, int], pads_w: tuple[int, int], path: int
    ) -> tuple[dict, list[gs.Tensor]]:
        """A tile copy's attributes and inputs (its tiled inputs are replaced afterwards).

        Args:
            node: the original node.
            pads_h: the tile's (begin, end) pads along H.
            pads_w: the tile's pads along W.
            path: the path index, for the names of new constants.

        Returns:
            (attributes, inputs); by default the node's own.
        """
        return dict(node.attrs), list(node.inputs)


RULES: dict[str, OpRule] = {}


def register(rule: OpRule, *ops: str) -> OpRule:
    """Register `rule` for each op type in `ops` (the ai.onnx domain).

    Raises:
        InternalError: an op already has a rule.
    """
    for op in ops:
        if op in RULES:
            raise InternalError(f"{op} already has a rule")
        RULES[op] = rule
    return rule


def rule_for(op: str) -> OpRule | None:
    """The rule registered for an op type, or None."""
    return RULES.get(op)
