"""A compiled OUT as stages: from stages.json, from plan.json alone, and single-cut plans.

Every way of getting the stages must compute exactly what the original model computes
when chained as the edge server and the device chain them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from flcompile.deploy.plan_index import load_index
from flcompile.deploy.protocol import error_message, model_name
from flcompile.deploy.stage_models import device_models, edge_models
from flcompile.errors import BadInputError
from flcompile.verify import make_feeds


def _session(model) -> ort.InferenceSession:
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def chain(out: Path, feeds: dict) -> dict[str, np.ndarray]:
    """Run a plan's stages as the runtime does: device stages, edge stages, then the fuse."""
    index = load_index(out)
    edges, fuse = edge_models(index)
    tiles: dict[str, np.ndarray] = {}
    for stage, device, edge in zip(index.paths, device_models(index), edges, strict=True):
        sent = dict(zip(stage.sends, _session(device).run(list(stage.sends), feeds), strict=True))
        if edge is None:
            tiles.update(sent)
        else:
            tiles.update(
                zip(stage.result, _session(edge).run(list(stage.result), sent), strict=True)
            )
    if fuse is None:
        return {name: tiles[name] for name in index.outputs}
    return dict(zip(index.outputs, _session(fuse).run(list(index.outputs), tiles), strict=True))


def _original(deploy_models: dict, name: str, feeds: dict) -> dict[str, np.ndarray]:
    session = _session(str(deploy_models[name]))
    return {o.name: v for o, v in zip(session.get_outputs(), session.run(None, feeds), strict=True)}


@pytest.mark.parametrize(("plan", "model"), [("fl", "sq96"), ("fl_bare", "sq96"), ("nfl", "sq96")])
def test_chained_stages_equal_the_original(plans, deploy_models, plan: str, model: str) -> None:
    feeds = make_feeds(str(deploy_models[model]), seed=3)
    got = chain(plans[plan], feeds)
    want = _original(deploy_models, model, feeds)
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_index_follows_stages_json_and_plan_json(plans) -> None:
    index = load_index(plans["fl"])
    stages = json.loads((plans["fl"] / "stages" / "stages.json").read_text())
    assert [s.path for s in index.paths] == stages["run_order"]
    assert all(s.device and s.device.startswith("stages/device_p") for s in index.paths)
    assert index.fused and index.fuse == "stages/edge_fuse.onnx"
    bare = load_index(plans["fl_bare"])  # the same plan without stages/: cut out of OUT's models
    assert bare.name == index.name
    assert [(s.path, s.sends, s.result, s.has_edge) for s in bare.paths] == [
        (s.path, s.sends, s.result, s.has_edge) for s in index.paths
    ]
    assert all(s.device is None for s in bare.paths) and bare.fuse is None
    assert bare.fuse_inputs == index.fuse_inputs


def test_single_cut_plan_is_one_path_without_fuse(plans) -> None:
    index = load_index(plans["nfl"])
    (stage,) = index.paths
    assert (stage.path, stage.device, stage.edge, stage.has_edge) == (
        0,
        "device.onnx",
        "edge.onnx",
        True,
    )
    assert stage.result == index.outputs and not index.fused and index.fuse_inputs == ()
    assert stage.sends == tuple(index.plan["nfl_plan"]["sends"])


def test_model_names_identify_plans(plans) -> None:
    names = {name: load_index(out).name for name, out in plans.items()}
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names.values())
    assert names["fl"] == names["fl_bare"]  # same plan, same name, wherever OUT lies
    assert len({names["fl"], names["nfl"], names["stream"]}) == 3
    plan = json.loads((plans["fl"] / "plan.json").read_text())
    plan["search"]["seconds"] = 123.0  # timings do not change the name...
    assert model_name(plan) == names["fl"]
    plan["paths"][0]["device_nodes"] += 1  # ...a different cut does
    assert model_name(plan) != names["fl"]
    plan["paths"][0]["device_nodes"] -= 1
    plan["paths"][0]["tile"]["h"][1] += 1  # ...and so do other tile boundaries
    assert model_name(plan) != names["fl"]


def test_bad_outs_are_one_line_errors(plans, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a compiled plan"):
        load_index(tmp_path)
    broken = tmp_path / "broken.flc"
    shutil.copytree(plans["fl"], broken)
    (broken / "plan.json").write_text("{not json")
    with pytest.raises(BadInputError, match="not valid JSON"):
        load_index(broken)
    stages = json.loads((plans["fl"] / "stages" / "stages.json").read_text())
    stages["paths"][0]["sends"] = ["something_else"]
    (broken / "plan.json").write_text((plans["fl"] / "plan.json").read_text())
    (broken / "stages" / "stages.json").write_text(json.dumps(stages))
    with pytest.raises(BadInputError, match="disagree"):
        load_index(broken)


def test_error_message_finds_the_refusal_in_tritons_wrapping() -> None:
    wrapped = (
        "[StatusCode.INTERNAL] Failed to process the request(s) for model 'm_0_0', message: "
        "TritonModelException: Model execute error: Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nflcompile.deploy.protocol.EdgeRequestError: '
        "duplicate path 2 for frame 0 of client 'a'\n\n\nAt:\n  model.py(501): execute\n"
    )
    assert error_message(wrapped) == "duplicate path 2 for frame 0 of client 'a'"
    assert error_message("[StatusCode.NOT_FOUND] Request for unknown model\nmore") == (
        "[StatusCode.NOT_FOUND] Request for unknown model"
    )
