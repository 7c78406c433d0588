"""Op rules (docs/design.md §1): one rule object per op family, registered by op type.

Each family's file registers its ops; the analysis (`local_ops.classify`, the receptive
field's axis maps), the tile rewrite and the cost layer's FLOP counts all read `rule_for`.
To add a local op, register it in the family that fits, or add a family file here.
"""

from __future__ import annotations

from flcompile.passes.ops import pointwise, repeat, window  # noqa: F401 - they register their ops
from flcompile.passes.ops.axes import AxisRepeat, AxisWindow, EmptyRegionError, Interval
from flcompile.passes.ops.base import RULES, LocalOp, OpRule, hw, register, rule_for

__all__ = [
    "RULES",
    "AxisRepeat",
    "AxisWindow",
    "EmptyRegionError",
    "Interval",
    "LocalOp",
    "OpRule",
    "hw",
    "register",
    "rule_for",
]
