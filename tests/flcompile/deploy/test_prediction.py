"""The prediction at a run's link rate: the plan re-simulated with each send re-timed."""

from __future__ import annotations

import json

import pytest

from flcompile.device.prediction import at_link_rate, predicted
from flcompile.plan_json import plan_timeline, resimulate


@pytest.mark.parametrize("name", ["fl", "nfl", "stream"])
def test_the_plans_own_rate_gives_the_plans_prediction(plans, name: str) -> None:
    plan = json.loads((plans[name] / "plan.json").read_text())
    timeline, _ = predicted(plan, None)
    assert timeline.finish == plan["predicted_s"] == resimulate(plan)
    same, _ = predicted(plan, plan["link"]["rate_MBps"])
    assert same.finish == pytest.approx(plan["predicted_s"], rel=1e-12)


@pytest.mark.parametrize("name", ["fl", "nfl"])
def test_another_rate_scales_every_send(plans, name: str) -> None:
    plan = json.loads((plans[name] / "plan.json").read_text())
    faster = at_link_rate(plan, plan["link"]["rate_MBps"] * 4)
    assert plan["link"]["rate_MBps"] * 4 == faster["link"]["rate_MBps"]
    old = plan_timeline(plan).paths
    new = plan_timeline(faster).paths
    for a, b in zip(old, new, strict=True):  # latency 0: each send takes a quarter as long
        assert b.link_end - b.link_start == pytest.approx((a.link_end - a.link_start) / 4)
    assert plan_timeline(faster).finish < plan["predicted_s"]
    assert json.loads((plans[name] / "plan.json").read_text()) == plan  # the input is untouched
