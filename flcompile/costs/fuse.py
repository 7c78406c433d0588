"""What the fuse costs: the nodes that join the tiles of F on the edge (`passes.tile`).

An r×c grid's fuse is a Concat per row of several tiles and one over several rows (a lone
Identity for 1×1, as `flcompile.passes.tile.fuse_node_count` counts); each reads and writes
its share of F. They compute no FLOPs, so the analytic model prices them at its overhead
per node, and a measured profile at its Concat (Identity) law by the bytes they move.
"""

from __future__ import annotations

import numpy as np

from flcompile.costs.node_cost import NodeWork


def fuse_work(grid: tuple[int, int], fused_bytes: float) -> NodeWork:
    """The fuse's nodes as `NodeWork`.

    Args:
        grid: (rows, columns).
        fused_bytes: bytes of F.

    Returns:
        One entry per fuse node, with the bytes it reads and writes.
    """
    rows, cols = grid
    if rows == cols == 1:
        return NodeWork(("Identity",), np.zeros(1), np.array([2 * fused_bytes]))
    moved = [2 * fused_bytes / rows] * (rows if cols > 1 else 0)
    moved += [2 * fused_bytes] if rows > 1 else []
    return NodeWork(("Concat",) * len(moved), np.zeros(len(moved)), np.array(moved))
