"""The plan's prediction for the link a run actually uses.

plan.json's times assume the rate it was compiled for; a run paced at another rate
(`--link-rate`) is compared with the same plan re-simulated at that rate: each message
keeps its bytes and the per-message latency, and only its transfer time changes.
"""

from __future__ import annotations

import copy

from flcompile.costs import BYTES_PER_MB, LinkModel
from flcompile.plan_json import plan_timeline
from flcompile.schedule import Timeline


def at_link_rate(plan: dict, rate_MBps: float | None) -> dict:
    """A copy of plan.json with every send re-timed for `rate_MBps` (None: the plan as is).

    Args:
        plan: a loaded plan.json.
        rate_MBps: the link's rate in MB/s.

    Returns:
        The plan, with `link.rate_MBps` and each path's (or the single cut's) `link_s`
        changed; `predicted_s` is left as compiled.
    """
    if rate_MBps is None:
        return plan
    plan = copy.deepcopy(plan)
    link = plan["link"]
    old = LinkModel(link["rate_MBps"], link["latency_s"])
    new = LinkModel(rate_MBps, link["latency_s"])
    for path in plan["paths"]:
        nbytes = sum(s["bytes"] for s in path["sends"])
        path["link_s"] = new.send_s(nbytes) if nbytes else 0.0
    nfl = plan["nfl_plan"]
    if nfl is not None and nfl["link_s"] > 0:
        nbytes = (nfl["link_s"] - old.latency_s) * old.rate_MBps * BYTES_PER_MB
        nfl["link_s"] = new.send_s(nbytes)
    link["rate_MBps"] = rate_MBps
    return plan


def predicted(plan: dict, rate_MBps: float | None) -> tuple[Timeline, float]:
    """The plan's simulated timeline at `rate_MBps`, and its fuse-and-rest seconds.

    Args:
        plan: a loaded plan.json.
        rate_MBps: the link's rate (None: the plan's own).

    Returns:
        (timeline, post-fuse edge seconds); the timeline's finish is the prediction.
    """
    plan = at_link_rate(plan, rate_MBps)
    return plan_timeline(plan), float(plan["post_fuse_edge_s"])
