"""Planning with measured costs: each node priced by its kind's law (kernel, op type, or
the overall law), in the cost tables every solver, baseline and the bound read, and
plan.json names the cost model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from flcompile.cli import main
from flcompile.costs import ComputeModel
from flcompile.costs.fuse import fuse_work
from flcompile.costs.link import LinkModel
from flcompile.costs.measured_sizes import MeasuredSizes
from flcompile.costs.node_cost import NodeWork
from flcompile.costs.node_key import OVERALL
from flcompile.costs.profiled import ProfiledComputeModel, price_nodes, profiled
from flcompile.costs.run_overhead import RunOverhead
from flcompile.costs.untiled import baselines, model_costs
from flcompile.errors import BadInputError
from flcompile.profile.accuracy import Accuracy
from flcompile.profile.law import CostLaw
from flcompile.profile.profile_json import SCHEMA, profile_dict
from tests.flcompile.tiny_models import conv_relu_model

A_S, B_S = 1e-4, 1e-9


def _write_profile(path, a_s=A_S, b_s=B_S, laws=None, sizes=None, run=None):
    law = CostLaw(a_s, b_s, 3)
    laws = {"Conv": law} if laws is None else laws
    data = profile_dict("m", 1, laws, law, Accuracy(()), sizes, run)
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


def test_a_profiles_run_overhead_is_paid_once_per_stage_run(tmp_path):
    costs = model_costs(gs.import_onnx(conv_relu_model()))
    link = LinkModel(rate_MBps=1.8)
    run = RunOverhead(5e-3, 1e-3, 4)
    plain, charged = (
        profiled(ComputeModel(), _write_profile(tmp_path / f"{name}.json", run=law), None)
        for name, law in (("d", None), ("r", run))
    )
    before, after = baselines(costs, plain, link), baselines(costs, charged, link)
    # local-only is one device run of the three nodes; full offload runs nothing there.
    assert after.local.total_s - before.local.total_s == pytest.approx(5e-3 + 3 * 1e-3)
    assert after.full_offload.total_s == pytest.approx(before.full_offload.total_s)
    assert charged.to_json()["sides"]["device"]["run"] == run.to_json()  # plan.json's cost


def test_a_malformed_run_overhead_is_refused_in_one_line(tmp_path):
    path = tmp_path / "bad.json"
    data = json.loads(Path(_write_profile(tmp_path / "d.json")).read_text())
    path.write_text(json.dumps({**data, "run": {"s_per_run": -1.0, "s_per_node": 0.0, "n": 2}}))
    with pytest.raises(BadInputError, match="malformed run overhead") as raised:
        profiled(ComputeModel(), str(path), None)
    assert "\n" not in raised.value.one_line()


def test_a_profile_and_the_speed_it_measures_are_not_both_accepted(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(conv_relu_model(), model)
    device = _write_profile(tmp_path / "d.json")
    argv = [str(model), "--rate", "1.8", "--device-profile", device, "--device-flops", "1e9"]
    assert main([*argv, "-o", str(tmp_path / "o")]) == 2
    assert "--device-profile" in capsys.readouterr().err


# conv_relu_model's nodes: FLOPs (tiny_models) and activation bytes read + written.
CONV_FLOPS, RELU_FLOPS, GAP_FLOPS = 144 * 64, 4 * 64, 4
CONV_BYTES, RELU_BYTES, GAP_BYTES = 4 * (2 * 64 + 4 * 64), 4 * (4 * 64 * 2), 4 * (4 * 64 + 4)


def test_a_slower_conv_law_changes_the_plan_by_hand(tmp_path):
    slow_conv = CostLaw(2e-4, 1e-6, 4, c_s_per_byte=1e-8)  # "Conv 3x3": 1000x slower per FLOP
    timed = {"GlobalAveragePool": np.array([[GAP_FLOPS, GAP_BYTES, 0.25]])}  # this very size
    device = _write_profile(tmp_path / "d.json", laws={"Conv 3x3": slow_conv}, sizes=timed)
    edge = _write_profile(tmp_path / "e.json", a_s=0.0, b_s=1e-11)
    plan = _compile(tmp_path, "p", "--device-profile", device, "--edge-profile", edge)
    conv_s = 2e-4 + 1e-6 * CONV_FLOPS + 1e-8 * CONV_BYTES
    rest_s = A_S + RELU_FLOPS * B_S + 0.25  # Relu: the overall law; GAP: its measured time
    assert plan["baselines"]["local_s"] == pytest.approx(conv_s + rest_s)
    uniform = _compile(tmp_path, "u", "--device-profile", _write_profile(tmp_path / "o.json"))
    assert uniform["baselines"]["local_s"] == pytest.approx(
        3 * A_S + (CONV_FLOPS + RELU_FLOPS + GAP_FLOPS) * B_S
    )
    device_side = plan["cost"]["sides"]["device"]
    assert device_side["file"] == device and device_side["schema"] == SCHEMA
    assert device_side["laws_used"] == {
        "Conv 3x3": "Conv 3x3",
        "GlobalAveragePool": OVERALL,
        "Relu": OVERALL,
    }
    assert device_side["fallbacks"] == {"GlobalAveragePool": OVERALL, "Relu": OVERALL}
    assert "version" in device_side and "law" in device_side


def test_tables_price_each_tile_copy_by_its_kinds_law(tmp_path):
    laws = {"Conv 3x3": CostLaw(1e-3, 2e-9, 4, 5e-9), "Relu": CostLaw(1e-5, 0.0, 4, 1e-10)}
    compute = profiled(ComputeModel(), _write_profile(tmp_path / "d.json", laws=laws), None)
    flops = np.array([[10.0, 20.0], [30.0, 40.0]])
    nbytes = np.array([[100.0, 200.0], [300.0, 400.0]])
    work = NodeWork(("Conv 3x3", "Relu"), flops, nbytes)
    expected = np.array(
        [
            [1e-3 + 2e-9 * 10 + 5e-9 * 100, 1e-5 + 1e-10 * 200],
            [1e-3 + 2e-9 * 30 + 5e-9 * 300, 1e-5 + 1e-10 * 400],
        ]
    )
    assert compute.device_nodes_s(work) == pytest.approx(expected)
    bound = compute.without_overheads()  # the fluid bound drops every intercept
    assert bound.device_nodes_s(work) == pytest.approx(expected - [[1e-3, 1e-5]])
    # The edge has no profile: analytic, FLOPs over Table I's speed.
    assert compute.edge_nodes_s(work) == pytest.approx(flops / ComputeModel().edge_flops)
    unknown = NodeWork(("Gemm",), np.array([7.0]), np.array([0.0]))
    assert compute.device_nodes_s(unknown) == pytest.approx([A_S + 7.0 * B_S])


def test_the_fuse_is_priced_by_the_concat_law():
    fuse = fuse_work((2, 3), fused_bytes=600.0)
    assert fuse.keys == ("Concat",) * 3  # two rows of three tiles, then the rows
    assert list(fuse.nbytes) == [600.0, 600.0, 1200.0]
    assert fuse_work((1, 1), 10.0).keys == ("Identity",)
    analytic = ComputeModel(overhead_edge_s=1e-3)
    assert analytic.edge_total_s(fuse) == pytest.approx(3e-3)  # overhead per node, as before


def test_a_real_profile_of_a_zoo_model_plans_it_by_kernel(tmp_path, capsys):
    import models

    model = tmp_path / "squeezenet.onnx"
    onnx.save(models.build("squeezenet", size=64, width=0.25), model)
    profile = tmp_path / "device-profile.json"
    argv = [
        "profile",
        str(model),
        "-o",
        str(profile),
        "--grids",
        "1x2",
        "--runs",
        "1",
        "--repeats",
        "1",
    ]
    assert main(argv) == 0  # measured in onnxruntime, its 1x2 stage models held out
    data = json.loads(profile.read_text())
    assert {"Conv 1x1", "Conv 3x3", "MaxPool 3x3", "Slice", "Concat"} <= set(data["laws"])
    assert {s["stage"] for s in data["accuracy"]["stages"]} >= {"device_p0", "edge_fuse"}
    run = data["run"]  # each stage's wall time less its kernels, fitted over the stages
    assert run["n"] >= 3 and run["s_per_run"] + run["s_per_node"] > 0
    out = tmp_path / "out"
    assert (
        main([str(model), "--rate", "1.8", "--device-profile", str(profile), "-o", str(out)]) == 0
    )
    assert f"device profile {profile}, edge 4.32e+09 FLOP/s" in capsys.readouterr().out
    side = json.loads((out / "plan.json").read_text())["cost"]["sides"]["device"]
    assert side["laws_used"]["Conv 1x1"] == "Conv 1x1" and side["fallbacks"] == {}
    assert side["schema"] == SCHEMA and side["threads"] == 1


def test_a_measured_size_never_undercuts_the_bounds_law():
    laws = {OVERALL: CostLaw(1e-3, 1e-9, 1, 1e-10)}
    sizes = MeasuredSizes.of({"Relu": np.array([[100.0, 10.0, 1e-12], [200.0, 10.0, 5e-3]])})
    work = NodeWork(("Relu", "Relu", "Relu"), np.array([100.0, 200.0, 300.0]), np.full(3, 10.0))
    linear = 1e-9 * work.flops + 1e-10 * 10.0
    priced = price_nodes(laws, sizes, work)
    assert priced == pytest.approx([linear[0], 5e-3, 1e-3 + linear[2]])  # clamped, timed, law
    assert price_nodes(laws, sizes, work, intercepts=False) == pytest.approx(linear)
