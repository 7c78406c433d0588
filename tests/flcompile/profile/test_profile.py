"""flcompile profile: trace parsing, the least-squares law, the profile file and its safety."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from flcompile.cli import main
from flcompile.costs.measured_sizes import MeasuredSizes
from flcompile.costs.node_key import OVERALL, activation_bytes, node_key, resolve_law
from flcompile.profile.accuracy import held_out_accuracy
from flcompile.profile.law import CostLaw, Sample, fit_law, fit_laws, predict_s, size_table
from flcompile.profile.profile_json import SCHEMA, read_laws
from flcompile.profile.trace import parse_trace, profile_model
from flcompile.profile.variants import Stage, Variant
from flcompile.verify import make_feeds
from tests.flcompile.tiny_models import conv_relu_model


def test_profile_model_reads_each_node_from_a_real_onnxruntime_trace():
    model = conv_relu_model()
    profile = profile_model(model, make_feeds(model), threads=1, runs=2)
    times = profile.nodes
    assert set(times) == {"conv", "relu", "gap"}
    assert 0 < profile.run_overhead_s < 0.05  # a run costs more than its kernels, not 50 ms
    assert times["conv"].op_type == "Conv"
    assert times["gap"].op_type == "GlobalAveragePool"
    assert all(t.seconds > 0 for t in times.values())


def test_parse_trace_drops_warmup_and_takes_the_median():
    def kernel(name, dur):
        return {
            "cat": "Node",
            "name": f"{name}_kernel_time",
            "dur": dur,
            "args": {"op_name": "Relu"},
        }

    events = [
        kernel("r", 1000),  # warm-up, dropped
        kernel("r", 10),
        {"cat": "Node", "name": "r_fence_before", "dur": 99},
        kernel("r", 30),
        kernel("r", 20),
        {"cat": "Session", "name": "model_run", "dur": 5000},
        kernel("once", 7),  # only a warm-up run: left out
    ]
    times = parse_trace(events)
    assert set(times) == {"r"}
    assert times["r"].seconds == pytest.approx(20e-6)
    assert times["r"].op_type == "Relu"


def test_fit_law_recovers_a_known_synthetic_law():
    rng = np.random.default_rng(0)
    flops = rng.uniform(1e6, 1e9, 40)
    seconds = 2e-5 + 3e-11 * flops
    noisy = seconds + rng.normal(0, 1e-6, flops.shape)
    law = fit_law(flops, noisy)
    assert law.b_s_per_flop == pytest.approx(3e-11, rel=0.02)
    assert law.a_s == pytest.approx(2e-5, abs=5e-6)
    assert law.n == 40


def test_fit_law_is_not_pulled_by_a_node_timed_under_load():
    flops = np.array([1e6, 2e6, 4e6, 8e6, 16e6, 32e6])
    seconds = 1e-5 + 1e-10 * flops
    seconds[3] *= 5  # another process ran meanwhile
    law = fit_law(flops, seconds)
    assert law.seconds(4e6) == pytest.approx(1e-5 + 4e-4, rel=0.02)  # plain least squares: 4 %
    assert law.seconds(32e6) == pytest.approx(1e-5 + 32e-4, rel=0.02)


def test_fit_law_never_predicts_negative_time():
    assert fit_law([1.0, 2.0], [5.0, 1.0]).b_s_per_flop == 0.0  # falling: a constant
    law = fit_law([1e6, 2e6, 3e6], [1e-3, 3e-3, 5e-3])  # would have a negative intercept
    assert law.a_s == 0.0 and law.b_s_per_flop > 0
    # Nodes of one size: proportional to FLOPs, else to bytes, else a constant.
    assert fit_law([3.0, 3.0], [4.0, 4.0]).seconds(6.0) == pytest.approx(8.0)
    assert fit_law([0.0], [4.0], [2.0]).seconds(0.0, 1.0) == pytest.approx(2.0)
    assert fit_law([0.0], [4.0]).seconds(100.0) == 4.0


def test_fit_law_recovers_a_bytes_term():
    rng = np.random.default_rng(1)
    nbytes = rng.uniform(1e4, 1e6, 30)
    seconds = 3e-6 + 2e-11 * nbytes  # a Slice: no FLOPs, memory-bound
    law = fit_law(np.zeros(30), seconds, nbytes)
    assert law.b_s_per_flop == 0.0
    assert law.c_s_per_byte == pytest.approx(2e-11, rel=1e-6)
    assert law.a_s == pytest.approx(3e-6, rel=1e-4)


def test_laws_are_per_kernel_and_op_type_and_fall_back_to_the_overall_law():
    conv3 = [Sample("Conv", f, 1e-9 * f, key="Conv 3x3") for f in (1e6, 2e6, 4e6)]
    conv1 = [Sample("Conv", f, 4e-9 * f, key="Conv 1x1") for f in (1e6, 3e6)]
    relu = [Sample("Relu", f, 1e-5) for f in (1e3, 5e3)]
    laws = fit_laws(conv3 + conv1 + relu)
    assert set(laws) == {"Conv", "Conv 1x1", "Conv 3x3", "Relu"}
    assert laws["Conv 1x1"].seconds(1e6) == pytest.approx(4e-3)
    assert laws["Conv"].n == 5  # every convolution, for kernels the profile did not see
    assert resolve_law(laws, "Conv 3x3") == "Conv 3x3"
    assert resolve_law(laws, "Conv 7x7") == "Conv"
    assert resolve_law(laws, "Gemm") is None  # no overall law given
    held = [Sample("Conv", 8e6, 0.0, key="Conv 3x3"), Sample("Relu", 2e3, 0.0)]
    assert predict_s(laws, [*held, Sample("Gemm", 1e9, 0.0)]) == pytest.approx(8e-3 + 1e-5)
    laws[OVERALL] = CostLaw(1.0, 0.0, 1)
    assert predict_s(laws, [Sample("Gemm", 1e9, 0.0)]) == pytest.approx(1.0)


def test_node_keys_name_the_kernel_and_bytes_count_activations():
    graph = gs.import_onnx(conv_relu_model())
    nodes = {n.name: n for n in graph.nodes}
    assert node_key(nodes["conv"]) == "Conv 3x3"  # from the weight: no kernel_shape attribute
    assert node_key(nodes["relu"]) == "Relu"
    # conv reads x (2·8·8 floats) and writes c (4·8·8 floats); its weight is not counted.
    assert activation_bytes(nodes["conv"]) == 4 * (2 * 64 + 4 * 64)
    assert activation_bytes(nodes["gap"]) == 4 * (4 * 64 + 4)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile")
    model = folder / "m.onnx"
    onnx.save(conv_relu_model(), model)
    out = folder / "p.json"
    rc = main(
        ["profile", str(model), "-o", str(out), "--grids", "1x2", "--runs", "1", "--repeats", "1"]
    )
    return rc, model, out


def test_profile_writes_a_versioned_profile(profiled, capsys):
    rc, _, out = profiled
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["schema"] == SCHEMA and data["kind"] == "profile"
    assert data["threads"] == 1 and "machine" in data
    assert {"Conv", "Conv 3x3", "Relu", "GlobalAveragePool"} <= set(data["laws"])
    for law in data["laws"].values():
        assert set(law) == {"a_s", "b_s_per_flop", "c_s_per_byte", "n"} and law["n"] >= 1
    assert {"median_rel_error", "worst_rel_error", "per_grid"} <= set(data["accuracy"])
    assert set(data["accuracy"]["per_grid"]) == {"1x2"}  # the tiled grid, held out
    held = {s["stage"] for s in data["accuracy"]["stages"]}
    assert {"device_p0", "edge_fuse"} <= held  # its stage models, as the runtime runs them
    laws, _ = read_laws(out)
    assert laws["Conv"].n == data["laws"]["Conv"]["n"]


def test_profile_replaces_its_own_file_but_never_a_users(profiled, tmp_path, capsys):
    _, model, out = profiled
    assert (
        main(
            [
                "profile",
                str(model),
                "-o",
                str(out),
                "--grids",
                "1x1",
                "--runs",
                "1",
                "--repeats",
                "1",
            ]
        )
        == 0
    )
    user = tmp_path / "mine.json"
    user.write_text('{"mine": 1}\n')
    assert main(["profile", str(model), "-o", str(user), "--runs", "1", "--repeats", "1"]) == 2
    assert user.read_text() == '{"mine": 1}\n'
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not written by flcompile" in err


def test_a_schema_1_profile_is_still_read(tmp_path):
    law = {"a_s": 1e-5, "b_s_per_flop": 1e-9, "n": 3}
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps({"schema": 1, "kind": "profile", "laws": {"Conv": law}, "overall": law})
    )
    laws, _ = read_laws(path)
    assert laws["Conv"] == CostLaw(1e-5, 1e-9, 3, 0.0) and laws[OVERALL].c_s_per_byte == 0.0


def test_read_laws_refuses_a_file_that_is_not_a_profile(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"schema": 1, "kind": "plan"}')
    with pytest.raises(Exception, match="not a schema-2 flcompile profile"):
        read_laws(path)


def test_held_out_accuracy_is_exact_for_stages_that_follow_the_laws():
    def stage(name, scale):
        conv = [
            Sample("Conv", f * scale, 1e-5 + 1e-10 * f * scale, key="Conv 3x3") for f in (1e6, 3e6)
        ]
        pool = [Sample("MaxPool", 0.0, 2e-6 + 1e-9 * b * scale, b * scale) for b in (1e5, 2e5)]
        return Stage(name, tuple(conv + pool))

    variants = [
        Variant((1, 1), (stage("model", 1.0),)),
        Variant((1, 2), (stage("device_p0", 0.5), stage("edge_p1", 0.6))),
        Variant((2, 2), tuple(stage(f"edge_p{p}", 0.25 + 0.01 * p) for p in range(4))),
        Variant((3, 3), (stage("device_p0", 1e-4),)),  # a few microseconds: under the floor
    ]
    accuracy = held_out_accuracy(variants)
    assert accuracy.grids == ("1x2", "2x2", "3x3")  # the untiled model is never held out
    assert [s.stage for s in accuracy.stages if s.grid == "1x2"] == ["device_p0", "edge_p1"]
    assert accuracy.worst() == pytest.approx(0.0, abs=1e-6)
    assert accuracy.worst("overall") > 1e-3  # one law for Conv and MaxPool fits less well
    assert accuracy.worst("overall_flops") > 0.05  # and without bytes, worse
    assert len(accuracy.judged) == 6 and accuracy.worst_small_abs_s() < 1e-6
    data = accuracy.to_json()
    assert data["median_rel_error"] == accuracy.median() and len(data["stages"]) == 7
    assert set(data["per_grid"]["2x2"]) == {"per_kind", "laws_only", "overall", "overall_flops"}


def test_a_size_the_profile_timed_takes_its_measured_time():
    samples = [Sample("Gemm", f, t, 10.0) for f, t in ((1e6, 1e-3), (2e6, 9e-3), (2e6, 7e-3))]
    sizes = size_table(samples)
    assert sizes["Gemm"].tolist() == [[1e6, 10.0, 1e-3], [2e6, 10.0, 8e-3]]  # the median
    laws = fit_laws(samples)
    assert predict_s(laws, [Sample("Gemm", 2e6, 0.0, 10.0)], sizes) == pytest.approx(8e-3)
    other = Sample("Gemm", 3e6, 0.0, 10.0)  # a size never timed: the law
    assert predict_s(laws, [other], sizes) == pytest.approx(predict_s(laws, [other]))
    measured = MeasuredSizes.of(sizes)
    keys, nbytes, zeros = ("Gemm", "Gemm", "Conv"), np.full((2, 3), 10.0), np.zeros((2, 3))
    flops = np.array([[2e6, 5e6, 2e6], [1e6, 1e6, 1e6]])
    got = measured.measured_or(keys, flops, nbytes, zeros)
    assert got.tolist() == [[8e-3, 0.0, 0.0], [1e-3, 1e-3, 0.0]]  # by key and size


def test_slowdown_multiplies_every_measured_time(tmp_path, monkeypatch):
    from flcompile.profile import variants
    from flcompile.profile.trace import ModelProfile, NodeTime

    def fixed(model, feeds, threads, runs, statistic):  # 1 ms per node, whatever the load
        nodes = {n.name: NodeTime(n.name, n.op_type, 1e-3) for n in model.graph.node}
        return ModelProfile(nodes, 2e-4)  # and 0.2 ms per run

    monkeypatch.setattr(variants, "profile_model", fixed)
    model = tmp_path / "m.onnx"
    onnx.save(conv_relu_model(), model)
    sizes, runs = {}, {}
    for k in (1, 3):
        out = tmp_path / f"p{k}.json"
        argv = ["profile", str(model), "-o", str(out), "--grids", "1x2", "--runs", "1"]
        assert main([*argv, "--repeats", "1", "--slowdown", str(k)]) == 0
        data = json.loads(out.read_text())
        assert data.get("slowdown", 1.0) == k
        sizes[k] = np.concatenate([np.asarray(v)[:, 2] for v in data["sizes"].values()])
        runs[k] = data["run"]
    np.testing.assert_allclose(sizes[1], 1e-3)  # each node's measured time...
    np.testing.assert_allclose(sizes[3], 3e-3)  # ...times the slowdown
    assert runs[1]["s_per_run"] + runs[1]["s_per_node"] == pytest.approx(2e-4, rel=0.3)
    assert runs[3]["s_per_run"] == pytest.approx(3 * runs[1]["s_per_run"])  # and each run's
