"""A local-only plan runs on the device alone: `flcompile run` sends nothing for it.

The plan prices a local-only frame as the device's work and nothing else, so the runner
must compute the outputs itself and never wait on the link or the edge.
"""

from __future__ import annotations

import contextlib

import numpy as np
import onnxruntime as ort

from flcompile.deploy.plan_index import load_index
from flcompile.deploy.stage_models import device_models
from flcompile.device.pacer import Unpaced
from flcompile.device.runner import DeviceRunner
from flcompile.send_accuracy import EXACT_TOLERANCE
from flcompile.verify import make_feeds


class RefusingClient:
    """An edge client that fails the test if the runner sends anything."""

    def send(self, **request) -> None:
        raise AssertionError(f"a local-only plan sent path {request.get('path')}")


def test_a_local_only_plan_runs_on_the_device_and_sends_nothing(plans, deploy_models) -> None:
    index = load_index(plans["local"])
    assert index.local, f"the plan is {index.plan['nfl_plan']['cut']}, not local-only"
    assert not load_index(plans["nfl"]).local
    feeds = make_feeds(str(deploy_models["sq96"]), seed=5)
    with contextlib.ExitStack() as stack:
        runner = DeviceRunner(
            index,
            device_models(index),
            RefusingClient(),
            Unpaced(),
            client_id="local",
            threads=1,
            timeout_s=5.0,
            stack=stack,
        )
        record = runner.run_frame(0, feeds)
    assert record.ok, record.error
    assert [e["kind"] for e in record.events] == ["device"]
    assert record.latency_s == record.events[0]["end"] > 0
    session = ort.InferenceSession(str(deploy_models["sq96"]), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    assert record.outputs.keys() == want.keys()
    for name, value in want.items():
        scale = EXACT_TOLERANCE * float(np.max(np.abs(value)))
        np.testing.assert_allclose(record.outputs[name], value, rtol=EXACT_TOLERANCE, atol=scale)
