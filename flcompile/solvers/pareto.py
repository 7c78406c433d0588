"""Per-path Pareto filtering of cuts in (device_s, link_s, edge_s).

The simulator's finish time is monotone in each path's device, link and edge seconds
(every time is a max or a sum of them; see `flcompile.simulate`). So if cut a of a path
costs no more than cut b in all three, replacing b by a in any schedule cannot make it
finish later: dropping b loses no optimum. On exact ties the lower cut index is kept.

Under edge-side reuse a cut's link seconds depend on the earlier paths, and what a path
sends changes what later paths must send, so only cuts that send the same tensors (hence
the same bytes in every schedule, with the same effect on the others) are compared.
"""

from __future__ import annotations

import numpy as np

from flcompile.costs.table import CostTable


def dominated_mask(table: CostTable) -> np.ndarray:
    """Which cuts are Pareto-dominated within their path.

    Args:
        table: the cost table.

    Returns:
        (P, K) bool: True where some other cut of the same path costs no more in device,
        link and edge seconds, and either strictly less in one of them or the same in all
        three with a lower index.
    """
    costs = np.stack([table.device_s, table.link_s, table.edge_s], axis=-1)  # (P, K, 3)
    a = costs[:, :, None, :]  # candidate dominator j on axis 1
    b = costs[:, None, :, :]  # dominated cut k on axis 2
    no_worse = np.all(a <= b, axis=-1)  # (P, j, k)
    better = np.any(a < b, axis=-1)
    num_cuts = table.num_cuts
    lower = np.arange(num_cuts)[:, None] < np.arange(num_cuts)[None, :]
    if table.reuse is not None:
        no_worse &= _same_sends(table)[None]
    return np.any(no_worse & (better | lower[None]), axis=1)


def _same_sends(table: CostTable) -> np.ndarray:
    """(K, K) bool: cuts j and k send the same tensors (all True without reuse)."""
    crossing = table.reuse.geometry.crossing
    return np.all(crossing[:, None, :] == crossing[None, :, :], axis=-1)


def pareto_cuts(table: CostTable) -> list[np.ndarray]:
    """The non-dominated cuts of every path, in increasing cut order.

    Args:
        table: the cost table.

    Returns:
        One int array per path with its non-dominated cut indices (never empty).
    """
    keep = ~dominated_mask(table)
    return [np.flatnonzero(row) for row in keep]


def replacement_cuts(table: CostTable) -> np.ndarray:
    """For every cut, a non-dominated cut of the same path that costs no more in all three.

    Args:
        table: the cost table.

    Returns:
        (P, K) int: the cut itself where it is non-dominated, otherwise the lowest
        non-dominated cut that dominates it. Swapping cuts through this map never makes a
        schedule finish later.
    """
    costs = np.stack([table.device_s, table.link_s, table.edge_s], axis=-1)
    no_worse = np.all(costs[:, :, None, :] <= costs[:, None, :, :], axis=-1)  # (P, j, k)
    if table.reuse is not None:
        no_worse &= _same_sends(table)[None]
    candidates = no_worse & ~dominated_mask(table)[:, :, None]
    return np.argmax(candidates, axis=1)
