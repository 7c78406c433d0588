"""EdgePlan without Triton: requests handled in-process give the original's outputs and timings."""

from __future__ import annotations

import contextlib

import numpy as np
import onnxruntime as ort
import pytest

from flcompile.deploy import protocol
from flcompile.deploy.plan_index import load_index
from flcompile.deploy.protocol import EdgeRequestError
from flcompile.deploy.stage_models import device_models
from flcompile.serve.edge_plan import EdgePlan
from flcompile.verify import compare, make_feeds


def _sends(index, seed: int) -> tuple[dict, dict]:
    """Each path's sends for one input, and that input."""
    models = device_models(index)
    feeds = make_feeds(models[0], seed=seed)
    sends = {}
    for stage, model in zip(index.paths, models, strict=True):
        if model is None:  # sends nothing
            assert not stage.sends
            continue
        source = model if isinstance(model, str) else model.SerializeToString()
        session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
        sends[stage.path] = dict(
            zip(stage.sends, session.run(list(stage.sends), feeds), strict=True)
        )
    return sends, feeds


@pytest.mark.parametrize(
    ("plan", "model"),
    [
        ("fl", "sq96"),
        ("nfl", "sq96"),
        ("stream", "r18"),
        ("reuse", "sq96"),
        ("reuse_bare", "sq96"),
        ("silent", "sq96"),
        ("silent_bare", "sq96"),
        ("inter", "sq96"),
        ("inter_bare", "sq96"),
    ],
)
def test_frames_of_two_clients_interleaved_give_each_its_own_outputs(
    plans, deploy_models, plan: str, model: str
) -> None:
    index = load_index(plans[plan])
    if plan.startswith(("reuse", "silent", "inter")):  # later paths read earlier pieces
        assert any(stage.held for stage in index.paths)
    # Under intermediate reuse later paths also read what earlier paths computed.
    assert any(stage.keeps for stage in index.paths) == plan.startswith("inter")
    silent = [stage.path for stage in index.paths if not stage.sends]
    assert bool(silent) == plan.startswith("silent")
    original = ort.InferenceSession(str(deploy_models[model]), providers=["CPUExecutionProvider"])
    with contextlib.ExitStack() as stack:
        edge = EdgePlan(index, instances=1, threads=1, frame_timeout_s=10, stack=stack)
        inputs = {client: _sends(index, seed) for client, seed in (("a", 1), ("b", 2))}
        answers = {}
        sending = [stage for stage in index.paths if stage.sends]  # the others never arrive
        for stage in sending:  # both frames in flight at once, paths interleaved
            for client, (sends, _) in inputs.items():
                params = {protocol.CLIENT: client, protocol.FRAME: 0, protocol.PATH: stage.path}
                answers[client] = edge.handle(0, sends[stage.path], params)
        for client, (_, feeds) in inputs.items():
            want = original.run(None, feeds)
            for name, value in zip(index.outputs, want, strict=True):
                assert compare(name, answers[client][name], value, rtol=1e-5, atol=1e-5).passed
            rows = answers[client][protocol.TIMINGS]
            paths = [int(r[0]) for r in rows]
            assert paths[: len(index.paths)] == [s.path for s in index.paths]
            assert (paths[-1] == protocol.FUSE_ROW) == index.fused
            assert (rows[:, 1] <= rows[:, 2]).all() and (rows[:, 2] <= rows[:, 3]).all()
        stats = edge.frames.stats()
        assert (stats.open, stats.done) == (0, 2)


def test_tensors_other_than_the_paths_sends_are_refused(plans) -> None:
    index = load_index(plans["fl"])
    with contextlib.ExitStack() as stack:
        edge = EdgePlan(index, instances=1, threads=1, frame_timeout_s=10, stack=stack)
        sends, _ = _sends(index, 0)
        first, second = (s.path for s in index.paths[:2])
        params = {protocol.CLIENT: "a", protocol.FRAME: 0, protocol.PATH: first}
        with pytest.raises(EdgeRequestError, match=f"path {first} sends"):
            edge.handle(0, sends[second], params)
        (name, value), *_ = sends[first].items()
        with pytest.raises(EdgeRequestError, match=f"tensor {name} of path {first} must be"):
            edge.handle(0, {name: value.astype(np.float64)}, params)
        with pytest.raises(EdgeRequestError, match="needs the parameters"):
            edge.handle(0, sends[first], {protocol.CLIENT: "a", protocol.FRAME: True})
        assert edge.requests_failed == 3
        assert edge.frames.stats().open == 0  # nothing refused opened a frame


def test_a_request_for_a_path_that_sends_nothing_is_refused(plans) -> None:
    index = load_index(plans["silent_bare"])
    silent = next(stage for stage in index.paths if not stage.sends)
    with contextlib.ExitStack() as stack:
        edge = EdgePlan(index, instances=1, threads=1, frame_timeout_s=10, stack=stack)
        params = {protocol.CLIENT: "a", protocol.FRAME: 0, protocol.PATH: silent.path}
        with pytest.raises(EdgeRequestError, match=f"path {silent.path} sends nothing"):
            edge.handle(0, {}, params)
        assert edge.frames.stats().open == 0
