"""Tests for flcompile.verify: feeds, the tolerance rule and edge(device(x)) checks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import flcompile.verify
from flcompile.errors import BadInputError, VerificationError
from flcompile.timing import TimingOptions, time_split
from flcompile.verify import (
    FusedCheck,
    SessionCache,
    VerifyOptions,
    VerifyResult,
    compare,
    make_feeds,
    verify_split,
)

OPSET = [helper.make_opsetid("", 17)]
X_SHAPE = [1, 3, 8, 8]


def _weights() -> onnx.TensorProto:
    w = np.random.default_rng(1).standard_normal((4, 3, 1, 1)).astype(np.float32)
    return onnx.numpy_helper.from_array(w, "W")


def _model(nodes, inputs, outputs, inits=(), name="g") -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=OPSET)
    onnx.checker.check_model(model, full_check=True)
    return model


def _x() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("X", TensorProto.FLOAT, X_SHAPE)


def _y(name: str = "Y") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4, 8, 8])


def original_model() -> onnx.ModelProto:
    # Graph: X -> Conv(1x1) -> conv_out -> Relu -> Y
    return _model(
        [
            helper.make_node("Conv", ["X", "W"], ["conv_out"], name="conv"),
            helper.make_node("Relu", ["conv_out"], ["Y"], name="relu"),
        ],
        [_x()],
        [_y()],
        [_weights()],
    )


def device_model() -> onnx.ModelProto:
    # Graph: X -> Conv -> fl_cut_conv_out
    return _model(
        [helper.make_node("Conv", ["X", "W"], ["fl_cut_conv_out"], name="conv")],
        [_x()],
        [_y("fl_cut_conv_out")],
        [_weights()],
    )


def edge_model(bias: float = 0.0) -> onnx.ModelProto:
    # Graph: fl_cut_conv_out -> Relu -> Y   (or Relu -> Add(bias) -> Y, a wrong edge)
    nodes = [helper.make_node("Relu", ["fl_cut_conv_out"], ["Y" if not bias else "r"])]
    inits = []
    if bias:
        inits = [onnx.numpy_helper.from_array(np.array(bias, dtype=np.float32), "bias")]
        nodes.append(helper.make_node("Add", ["r", "bias"], ["Y"]))
    return _model(nodes, [_y("fl_cut_conv_out")], [_y()], inits)


def tiled_model(swap: bool = False) -> onnx.ModelProto:
    # Graph: X -> Slice(W 0:4) -> Conv -> t0 \
    #        X -> Slice(W 4:8) -> Conv -> t1 -> Concat(W) -> conv_out -> Relu -> Y
    # (a 1x1 conv needs no halo); swap=True concatenates the tiles in the wrong order.
    def const(name, values):
        return onnx.numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    inits = [
        _weights(),
        const("s0", [0]),
        const("e0", [4]),
        const("s1", [4]),
        const("e1", [8]),
        const("ax", [3]),
    ]
    tiles = ["t1", "t0"] if swap else ["t0", "t1"]
    nodes = [
        helper.make_node("Slice", ["X", "s0", "e0", "ax"], ["x0"]),
        helper.make_node("Slice", ["X", "s1", "e1", "ax"], ["x1"]),
        helper.make_node("Conv", ["x0", "W"], ["t0"], name="conv/p0"),
        helper.make_node("Conv", ["x1", "W"], ["t1"], name="conv/p1"),
        helper.make_node("Concat", tiles, ["conv_out"], axis=3, name="fuse"),
        helper.make_node("Relu", ["conv_out"], ["Y"], name="relu"),
    ]
    return _model(nodes, [_x()], [_y()], inits)


# --------------------------------------------------------------------------- make_feeds


def test_make_feeds_is_seeded_and_typed():
    model = original_model()
    a = make_feeds(model, seed=3)
    b = make_feeds(model, seed=3)
    c = make_feeds(model, seed=4)
    assert list(a) == ["X"]
    assert a["X"].shape == tuple(X_SHAPE) and a["X"].dtype == np.float32
    np.testing.assert_array_equal(a["X"], b["X"])
    assert not np.array_equal(a["X"], c["X"])


def test_make_feeds_skips_initializer_inputs_and_handles_int_bool():
    inputs = [
        helper.make_tensor_value_info("f", TensorProto.FLOAT, [2, 3]),
        helper.make_tensor_value_info("i", TensorProto.INT64, [4]),
        helper.make_tensor_value_info("b", TensorProto.BOOL, [5]),
        helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 3, 1, 1]),
    ]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["f"], ["o"])],
        "g",
        inputs,
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2, 3])],
        [_weights()],
    )
    feeds = make_feeds(helper.make_model(graph, opset_imports=OPSET), seed=0)
    assert sorted(feeds) == ["b", "f", "i"]
    assert feeds["i"].dtype == np.int64 and feeds["i"].min() >= 0 and feeds["i"].max() < 4
    assert feeds["b"].dtype == np.bool_ and feeds["b"].shape == (5,)


def test_make_feeds_dynamic_dim_names_input_and_dim():
    model = original_model()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(BadInputError, match=r"'X' dim 2.*--input-shape"):
        make_feeds(model)


def test_make_feeds_from_npy(tmp_path):
    data = np.arange(np.prod(X_SHAPE), dtype=np.float32).reshape(X_SHAPE)
    np.save(tmp_path / "x.npy", data)
    feeds = make_feeds(original_model(), input_path=tmp_path / "x.npy")
    np.testing.assert_array_equal(feeds["X"], data)


@pytest.mark.parametrize(
    ("array", "pattern"),
    [
        (np.zeros((1, 3, 8, 7), np.float32), r"holds float32 1x3x8x7.*expects float32 1x3x8x8"),
        (np.zeros(X_SHAPE, np.float64), r"holds float64 .*expects float32"),
    ],
)
def test_make_feeds_npy_wrong_shape_or_dtype(tmp_path, array, pattern):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(BadInputError, match=pattern):
        make_feeds(original_model(), input_path=tmp_path / "x.npy")


def test_make_feeds_npy_missing_or_not_npy(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        make_feeds(original_model(), input_path=tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(BadInputError, match=r"not a readable \.npy"):
        make_feeds(original_model(), input_path=tmp_path / "junk.npy")


# --------------------------------------------------------------------------- compare


def test_compare_threshold_passes_and_just_above_fails():
    ref = np.array([1.0, 2.0, -2.0])
    # scale = 2, atol * scale = 0.5, so element 0 may be off by 0.5 + 0.5 * 1.0 = 1.0.
    at = compare("t", np.array([2.0, 2.0, -2.0]), ref, rtol=0.5, atol=0.25)
    assert at.passed
    assert at.max_abs_err == 1.0 and at.max_rel_err == 0.5
    above = compare("t", np.array([2.0 + 1e-12, 2.0, -2.0]), ref, rtol=0.5, atol=0.25)
    assert not above.passed
    assert above.needed_atol > 0.25 and above.needed_rtol > 0.5


def test_compare_scales_atol_to_tiny_references():
    ref = np.full(10, 1e-9, dtype=np.float32)
    # Off by 100%: an absolute atol of 1e-5 would pass it; scaled to 1e-9 it must fail.
    wrong = compare("tiny", ref * 2, ref, rtol=1e-5, atol=1e-5)
    assert not wrong.passed
    assert wrong.max_rel_err == pytest.approx(1.0)
    close = compare("tiny", ref * np.float32(1 + 1e-6), ref, rtol=1e-5, atol=1e-5)
    assert close.passed


def test_compare_zero_reference_uses_unit_scale():
    ref = np.zeros(4, np.float32)
    assert compare("z", np.full(4, 1e-6, np.float32), ref, rtol=1e-5, atol=1e-5).passed
    assert not compare("z", np.full(4, 1e-4, np.float32), ref, rtol=1e-5, atol=1e-5).passed


def test_compare_identical_tensors_pass_with_zero_error():
    ref = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    ref[3] = np.inf
    same = compare("x", ref.copy(), ref, rtol=0, atol=0)
    assert same.passed
    assert (same.max_abs_err, same.max_rel_err, same.needed_atol, same.needed_rtol) == (0, 0, 0, 0)
    one_ulp = ref.copy()
    one_ulp[0] = np.nextafter(one_ulp[0], np.float32(np.inf))
    assert compare("x", one_ulp, ref, rtol=0, atol=0).max_abs_err > 0


def test_compare_nan_shape_dtype():
    ref = np.ones(3, np.float32)
    nan = compare("n", np.array([1, np.nan, 1], np.float32), ref, rtol=1e-5, atol=1e-5)
    assert not nan.passed and "NaN" in nan.reason
    both = np.array([1, np.nan], np.float32)
    assert compare("n", both, both.copy(), rtol=1e-5, atol=1e-5).passed
    shape = compare("s", np.ones(4, np.float32), ref, rtol=1, atol=1)
    assert not shape.passed and "shape" in shape.reason
    dtype = compare("d", np.ones(3, np.float64), ref, rtol=1, atol=1)
    assert not dtype.passed and "dtype" in dtype.reason


# --------------------------------------------------------------------------- verify_split


def test_verify_split_passes_for_correct_split():
    feeds = make_feeds(original_model(), seed=0)
    result = verify_split(
        original_model(),
        device_model(),
        edge_model(),
        feeds,
        options=VerifyOptions(seed=0, fused=FusedCheck("conv_out", tiled_model())),
    )
    assert result.passed
    assert [c.name for c in result.compared] == ["Y", "conv_out"]
    assert result.max_abs_err == 0.0
    result.raise_if_failed("tiny.onnx")  # no raise
    js = result.to_json()
    assert set(js) == {
        "passed",
        "max_abs_err",
        "max_rel_err",
        "atol",
        "rtol",
        "seed",
        "inputs",
        "argmax_unchanged",
        "compared",
    }
    assert js["compared"][0] == {
        "name": "Y",
        "max_abs_err": 0.0,
        "max_rel_err": 0.0,
        "passed": True,
    }


def test_verify_split_wrong_edge_fails_and_names_tensor():
    feeds = make_feeds(original_model(), seed=0)
    result = verify_split(original_model(), device_model(), edge_model(bias=1e-3), feeds)
    assert not result.passed
    assert result.first_failure.name == "Y"
    assert result.max_abs_err == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(VerificationError) as info:
        result.raise_if_failed("tiny.onnx")
    err = info.value
    assert err.exit_code == 3
    text = str(err)
    assert "\n" not in text
    assert "tiny.onnx" in text and "'Y'" in text and "--debug" in text
    assert "atol=1e-05" in text and "rtol=1e-05" in text


def test_verify_split_checks_fused_tensor_of_tiled():
    feeds = make_feeds(original_model(), seed=0)
    result = verify_split(
        original_model(),
        device_model(),
        edge_model(),
        feeds,
        options=VerifyOptions(fused=FusedCheck("conv_out", tiled_model(swap=True))),
    )
    assert not result.passed
    assert [c.passed for c in result.compared] == [True, False]
    assert result.first_failure.name == "conv_out"


def test_verify_split_fails_when_edge_lacks_an_original_output():
    # edge.onnx computes the right values under another name: 'Y' is never compared, and
    # the fused tensor passing must not make up for it.
    edge = edge_model()
    edge.graph.node[0].output[0] = "Y_renamed"
    edge.graph.output[0].name = "Y_renamed"
    feeds = make_feeds(original_model(), seed=0)
    result = verify_split(
        original_model(),
        device_model(),
        edge,
        feeds,
        options=VerifyOptions(fused=FusedCheck("conv_out", tiled_model())),
    )
    assert not result.passed
    assert [(c.name, c.passed) for c in result.compared] == [("conv_out", True), ("Y", False)]
    assert result.first_failure.name == "Y"
    assert result.to_json()["passed"] is False
    with pytest.raises(VerificationError, match=r"'Y': not among edge\.onnx's outputs"):
        result.raise_if_failed("tiny.onnx")


def test_a_verification_that_compared_nothing_fails():
    result = VerifyResult.summarize([], expected=[], atol=1e-5, rtol=1e-5, seed=0)
    assert not result.passed
    assert [c.reason for c in result.compared] == ["nothing was compared"]
    with pytest.raises(VerificationError, match="nothing was compared"):
        result.raise_if_failed("tiny.onnx")
    ok = compare("Y", np.ones(2), np.ones(2), rtol=1e-5, atol=1e-5)
    assert VerifyResult.summarize([ok], expected=["Y"], atol=1e-5, rtol=1e-5, seed=0).passed


def test_verify_split_accepts_paths_with_external_data(tmp_path):
    paths = {}
    for name, model in [
        ("original", original_model()),
        ("device", device_model()),
        ("edge", edge_model()),
        ("tiled", tiled_model()),
    ]:
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save_model(
            model,
            paths[name],
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{name}.data",
            size_threshold=0,
        )
    feeds = make_feeds(paths["original"], seed=1)
    result = verify_split(
        paths["original"],
        str(paths["device"]),
        paths["edge"],
        feeds,
        options=VerifyOptions(seed=1, fused=FusedCheck("conv_out", paths["tiled"])),
    )
    assert result.passed and result.seed == 1
    assert [c.name for c in result.compared] == ["Y", "conv_out"]


def test_verify_split_unknown_fused_tensor_is_bad_input():
    feeds = make_feeds(original_model())
    with pytest.raises(BadInputError, match="'nope'"):
        verify_split(
            original_model(),
            device_model(),
            edge_model(),
            feeds,
            options=VerifyOptions(fused=FusedCheck("nope")),
        )


def test_verify_split_large_model_route(monkeypatch):
    # Pretend every model is over the protobuf limit: sessions then load from a temporary
    # directory with external data, and F is typed by shape inference on a weightless copy.
    import flcompile.verify as verify

    monkeypatch.setattr(verify, "PROTOBUF_LIMIT", 64)
    saved = []
    real_save = onnx.save_model

    def spy_save(proto, path, **kwargs):
        saved.append(kwargs.get("save_as_external_data"))
        return real_save(proto, path, **kwargs)

    monkeypatch.setattr(verify.onnx, "save_model", spy_save)
    feeds = make_feeds(original_model(), seed=0)
    result = verify_split(
        original_model(),
        device_model(),
        edge_model(),
        feeds,
        options=VerifyOptions(fused=FusedCheck("conv_out", tiled_model())),
    )
    assert result.passed
    assert saved and all(saved)
    assert verify._elem_types(original_model(), ["conv_out"]) == {"conv_out": TensorProto.FLOAT}


def test_float16_tolerances_do_not_go_below_a_few_ulps() -> None:
    from flcompile.verify import compare

    ref = np.linspace(1.0, 2.0, 64, dtype=np.float16)
    one_ulp = np.nextafter(ref, np.float16(3.0))
    assert compare("h", one_ulp, ref, rtol=1e-5, atol=1e-5).passed
    assert not compare("h", ref * np.float16(1.05), ref, rtol=1e-5, atol=1e-5).passed
    # float32 keeps the requested tolerance: 1e-4 relative is far above its 8 ulps.
    ref32 = ref.astype(np.float32)
    assert not compare("f", ref32 * np.float32(1 + 1e-4), ref32, rtol=1e-5, atol=1e-5).passed


# --------------------------------------------------------------------------- shared sessions


def test_a_session_cache_opens_each_model_and_setting_once():
    model = original_model()
    with SessionCache() as sessions:
        first = sessions.get(model, threads=1)
        assert sessions.get(model, threads=1) is first
        assert sessions.get(model, threads=2) is not first
        assert sessions.get(model.SerializeToString(), threads=1) is not first
        sessions.release(model, threads=1)
        assert sessions.get(model, threads=1) is not first, "a released session is reopened"


def test_verification_and_timing_load_each_model_once(monkeypatch):
    opened = []
    real_open = flcompile.verify.open_session

    def counting_open(model, **kwargs):
        opened.append((model, kwargs["threads"]))
        return real_open(model, **kwargs)

    monkeypatch.setattr(flcompile.verify, "open_session", counting_open)
    original, device, edge = original_model(), device_model(), edge_model()
    feeds = make_feeds(original)
    threads = {"device_threads": 1, "edge_threads": 2}
    with SessionCache() as sessions:
        assert verify_split(
            original, device, edge, feeds, options=VerifyOptions(**threads), sessions=sessions
        ).passed
        timing = TimingOptions(runs=1, warmup=0, **threads)
        time_split(original, device, edge, feeds, options=timing, sessions=sessions)
    # Verification runs the original at the edge's threads; timing adds it at the device's.
    assert opened == [(original, 2), (device, 1), (edge, 2), (original, 1)]


def test_a_serialized_original_verifies_like_the_proto():
    feeds = make_feeds(original_model())
    result = verify_split(
        original_model().SerializeToString(), device_model(), edge_model(bias=1e-3), feeds
    )
    assert not result.passed and [c.name for c in result.compared] == ["Y"]
