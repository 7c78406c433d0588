"""Planning with measured costs: a profile's law becomes a side's speed and overhead, and
plan.json names the cost model."""

from __future__ import annotations

import json

import onnx
import pytest

from flcompile.cli import main
from flcompile.costs import ComputeModel
from flcompile.costs.profiled import ProfiledComputeModel, profiled
from flcompile.errors import BadInputError
from flcompile.profile.accuracy import Accuracy
from flcompile.profile.law import CostLaw
from flcompile.profile.profile_json import profile_dict
from tests.flcompile.tiny_models import conv_relu_model

A_S, B_S = 1e-4, 1e-9


def _write_profile(path, a_s=A_S, b_s=B_S):
    law = CostLaw(a_s, b_s, 3)
    data = profile_dict("m", 1, {"Conv": law}, law, Accuracy({}))
    path.write_text(json.dumps(data))
    return str(path)


def test_profiled_takes_the_overall_law_as_speed_and_overhead(tmp_path):
    compute = profiled(ComputeModel(edge_concurrency=0), _write_profile(tmp_path / "d.json"), None)
    assert isinstance(compute, ProfiledComputeModel) and compute.kind == "profiled"
    assert compute.device_flops == pytest.approx(1 / B_S)
    assert compute.overhead_dev_s == A_S
    assert compute.edge_flops == ComputeModel().edge_flops  # the edge stays analytic
    assert compute.edge_concurrency == 0
    assert compute.device_s(2e6, nodes=3) == pytest.approx(3 * A_S + 2e6 * B_S)
    assert profiled(ComputeModel(), None, None) == ComputeModel()


def test_a_law_without_a_flop_term_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="no cost per FLOP"):
        profiled(ComputeModel(), None, _write_profile(tmp_path / "e.json", b_s=0.0))


def _compile(tmp_path, name, *extra):
    model = tmp_path / "m.onnx"
    if not model.exists():
        onnx.save(conv_relu_model(), model)
    out = tmp_path / name
    assert main([str(model), "--rate", "1.8", "-o", str(out), "-q", *extra]) == 0
    return json.loads((out / "plan.json").read_text())


def test_planning_with_profiles_uses_the_measured_costs_and_says_so(tmp_path):
    analytic = _compile(tmp_path, "a")
    device = _write_profile(tmp_path / "d.json")
    edge = _write_profile(tmp_path / "e.json", a_s=0.0, b_s=1e-11)
    plan = _compile(tmp_path, "p", "--device-profile", device, "--edge-profile", edge)
    assert analytic["cost"]["kind"] == "analytic" and "profiles" not in analytic["cost"]
    assert plan["cost"]["kind"] == "profiled"
    assert plan["cost"]["profiles"] == {"device": device, "edge": edge}
    # local-only: the three nodes on the device, by the device's law.
    nodes, flops = 3, analytic["baselines"]["local_s"] * ComputeModel().device_flops
    assert plan["baselines"]["local_s"] == pytest.approx(nodes * A_S + flops * B_S)


def test_a_profile_and_the_speed_it_measures_are_not_both_accepted(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(conv_relu_model(), model)
    device = _write_profile(tmp_path / "d.json")
    argv = [str(model), "--rate", "1.8", "--device-profile", device, "--device-flops", "1e9"]
    assert main([*argv, "-o", str(tmp_path / "o")]) == 2
    assert "--device-profile" in capsys.readouterr().err
