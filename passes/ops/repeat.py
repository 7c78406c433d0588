"""Upsampling ops: output pixel h reads input pixel ⌊h / s⌋ for an integer factor s.

DepthToSpace (s = blocksize).
A tile of input rows [a, b) computes output rows [a·s, b·s); a consumer that wants fewer
crops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from flcompile.passes.ops.axes import AxisRepeat
from flcompile.passes.ops.base import (
    IsSpatial,
    LocalOp,
    OpRule,
    Slots,
    register,
)


@dataclass(frozen=True)
class DepthToSpaceRule(OpRule):
    """DepthToSpace: output pixel h reads input pixel ⌊h / blocksize⌋."""

    def local(self, node: gs.Node, spatial: Slots, is_spatial: IsSpatial) -> LocalOp | str:
        """Always local."""
        b = int(node.attrs["blocksize"])
        return LocalOp(AxisRepeat(b), AxisRepeat(b))


register(DepthToSpaceRule(flops_per_element=0.0), "DepthToSpace")
