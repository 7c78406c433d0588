"""Minimizing Waiting (MW), the paper's Algorithm 1 lines 5-14, for one fused tensor F and grid.

The outer search over F (depth τ) and grids (Algorithm 1 lines 2-4 and 15-23) belongs to
the caller; this module turns one `CostTable` into one `Schedule`.

How each step maps to the paper (Section III):

- Lines 5-9, Eq. 7, ``min (T_p(v-1) + t_v^tr)`` with h_{v-1} = 0, h_v = 1: offloading layer
  v of path p means cut k = v - 1 (the first k layers run on the device), so
  T_p(v-1) = device_s[p, k] when p has the device from time 0 and t_v^tr = link_s[p, k].
  Each path's transmission completion time is min_k device_s + link_s; ties go to the cut
  with the smaller local computation time device_s ("the ES can start processing as soon as
  possible"). The path with the smallest such time is s_1, with that cut.
- Lines 10-14, Eq. 8, ``min |T_{p-1}(v) - t_v^es - T_p(o'-1)|``: T_{p-1}(v) is the
  completion time of the previous path's offloaded layer, which includes its edge time
  t_v^es; subtracting it leaves the moment t the previous path's transmission completes.
  T_p(o'-1) is when the candidate's last local layer finishes on the device, i.e.
  device_free + device_s[p, k], since the device runs the paths back to back. Among all
  remaining paths and all their cuts, MW takes the (p, k) minimising that distance; ties go
  to the cut with more layers on the device ("the maximum number of previous layers"),
  so the p-th path "can compute more on the end device".

What the OCR'd text leaves open, and how it is resolved here:

- Line 5's "for each FL path do" computes every path's Eq. 7 cut, but only s_1 keeps it:
  the other paths get their cuts from Eq. 8, as in the Fig. 3 walk-through.
- Fig. 3's text confirms the device-finish reading: after path 1 (offloaded at layer 1, no
  local layer) the device is free at 0, and path 2's layers 4 and 5 finish at 1 + 1 = 2.
- t for Eq. 8 comes from the timeline built so far with the simulator's rules (device back
  to back, one FCFS link), so a send that queues behind the previous one counts its wait.
  A path whose send takes 0 s completes its "transmission" when its device part ends.
- Ties between paths (Eq. 7: same transmission completion time; Eq. 8: same distance and
  same number of device layers) are not discussed; the lower path index wins.
- Times that are equal in exact arithmetic can differ in the last bits after summation, so
  values within a relative 1e-12 of the minimum count as ties.
- Cut K-1 (the whole path on the device, its tile of F sent) is a candidate like any other.
- Under edge-side reuse (`CostTable.reuse`) the first path sends its whole region (nothing
  is held yet); each later send takes the seconds of its new bytes given the paths before.
"""

from __future__ import annotations

import numpy as np

from flcompile.costs.table import CostTable
from flcompile.schedule import Schedule
from flcompile.simulate import check_schedule, send

TIE_RTOL = 1e-12


def _first_path(table: CostTable) -> tuple[int, int]:
    """Eq. 7: the first path and its cut."""
    dev = table.device_s
    done = dev + table.link_s  # transmission completion time with the device from time 0
    tol = TIE_RTOL * float(np.abs(done).max())
    best = done.min(axis=1, keepdims=True)
    tied = done <= best + tol
    local = np.where(tied, dev, np.inf)
    tied &= local <= local.min(axis=1, keepdims=True) + TIE_RTOL * float(np.abs(dev).max())
    cut_of = np.argmax(tied, axis=1)  # smallest device time, then the lowest cut
    first = int(np.argmax(best[:, 0] <= best.min() + tol))
    return first, int(cut_of[first])


class _Sends:
    """Link seconds of each path as it joins the schedule (its new bytes under reuse)."""

    def __init__(self, table: CostTable) -> None:
        self.table = table
        self.held = [] if table.reuse is None else [0] * len(table.reuse.geometry.tensors)

    def __call__(self, p: int, k: int) -> float:
        reuse = self.table.reuse
        if reuse is None:
            return float(self.table.link_s[p, k])
        return float(reuse.link.send_s(reuse.geometry.add(p, k, self.held)))


def solve_mw(table: CostTable) -> Schedule:
    """Schedule the paths with Minimizing Waiting (Algorithm 1, lines 5-14).

    Args:
        table: per-path, per-cut seconds for one fused tensor and grid.

    Returns:
        MW's order and cuts.

    Raises:
        InternalError: the table has no paths (raised when the result is checked).
    """
    dev = table.device_s
    num_paths, num_cuts = dev.shape
    if num_paths == 0:
        check_schedule(table, (), ())
    first, first_cut = _first_path(table)
    order = [first]
    cuts = [0] * num_paths
    cuts[first] = first_cut
    # Placed paths' rows become +inf, so their distance is +inf.
    remaining = dev.astype(float, copy=True)
    remaining[first] = np.inf
    dist = np.empty_like(remaining)
    dev_scale = float(np.abs(dev).max())
    sent_s = _Sends(table)
    t_dev = float(dev[first, first_cut])
    _, t_sent, t_link = send(t_dev, 0.0, sent_s(first, first_cut), table.waits)
    for _ in range(num_paths - 1):
        np.add(remaining, t_dev - t_sent, out=dist)
        np.abs(dist, out=dist)
        best = int(dist.argmin())
        limit = dist.flat[best] + TIE_RTOL * (abs(t_sent) + abs(t_dev) + dev_scale)
        tied_mask = dist <= limit
        if np.count_nonzero(tied_mask) == 1:
            p, k = divmod(best, num_cuts)
        else:  # row-major flat indices: (p, k) = divmod(index, K)
            tied = np.flatnonzero(tied_mask)
            ks = tied % num_cuts
            first = int(ks.argmax())  # most layers on the device, then the lowest path
            p, k = int(tied[first]) // num_cuts, int(ks[first])
        order.append(p)
        cuts[p] = k
        remaining[p] = np.inf
        t_dev += float(dev[p, k])
        _, t_sent, t_link = send(t_dev, t_link, sent_s(p, k), table.waits)
    schedule = Schedule(order=tuple(order), cuts=tuple(cuts))
    check_schedule(table, schedule.order, schedule.cuts)
    return schedule
