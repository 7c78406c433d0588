"""Tests of the model zoo: every model builds valid ONNX that onnxruntime runs with O(1) outputs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from flcompile.errors import InternalError, UsageError
from flcompile.models import NAMES, build, default_size, min_size, zoo
from flcompile.models.layers import GraphBuilder

SMALL_WIDTH = 0.25
SMALL_SIZE = 64
SMALL_BATCH = 2


def expected_output_shape(name: str, size: int, batch: int) -> list[int]:
    if name == "yolov2":
        return [batch, 125, size // 32, size // 32]
    return [batch, 1000]


def dims(value_info: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def run(model: onnx.ModelProto, extra_outputs: tuple[str, ...] = ()) -> list[np.ndarray]:
    """Run `model` on a seeded N(0, 1) input, fetching "output" and `extra_outputs`."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for name in extra_outputs:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    shape = dims(model.graph.input[0])
    x = np.random.default_rng(123).standard_normal(shape, dtype=np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) for t in model.graph.initializer)


def nodes(model: onnx.ModelProto, op: str) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == op]


def attr(node: onnx.NodeProto, name: str) -> object:
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


@pytest.fixture(scope="session")
def small() -> dict[str, onnx.ModelProto]:
    return {
        name: build(name, width=SMALL_WIDTH, size=SMALL_SIZE, batch=SMALL_BATCH) for name in NAMES
    }


@pytest.mark.parametrize("name", NAMES)
def test_small_model_is_valid_onnx(name: str, small: dict[str, onnx.ModelProto]) -> None:
    model = small[name]
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert [i.name for i in model.graph.input] == ["input"]
    assert dims(model.graph.input[0]) == [SMALL_BATCH, 3, SMALL_SIZE, SMALL_SIZE]
    assert [o.name for o in inferred.graph.output] == ["output"]
    assert dims(inferred.graph.output[0]) == expected_output_shape(name, SMALL_SIZE, SMALL_BATCH)
    node_names = [n.name for n in model.graph.node]
    assert all(node_names) and len(set(node_names)) == len(node_names)
    assert model.producer_name == "flcompile.models"
    assert model.ir_version <= 9 and model.opset_import[0].version == 17
    assert name in model.graph.name and len(model.doc_string) > 40


@pytest.mark.parametrize("name", NAMES)
def test_small_model_runs_with_o1_activations(name: str, small: dict[str, onnx.ModelProto]) -> None:
    model = small[name]
    mid = model.graph.node[len(model.graph.node) // 2].output[0]
    out, mid_value = run(model, (mid,))
    assert list(out.shape) == expected_output_shape(name, SMALL_SIZE, SMALL_BATCH)
    for value in (out, mid_value):
        assert np.isfinite(value).all()
        assert 1e-3 < float(value.std()) < 1e3
    # Different samples of the batch give different outputs (the batch axis is real).
    assert not np.allclose(out[0], out[1])


@pytest.mark.parametrize("name", NAMES)
def test_full_width_activations_stay_o1(name: str) -> None:
    model = build(name, size=64)
    values = run(model, tuple(n.output[0] for n in model.graph.node))
    stds = [float(v.std()) for v in values]
    assert all(np.isfinite(v).all() for v in values)
    assert min(stds) > 1e-3 and max(stds) < 1e3, (min(stds), max(stds))


@pytest.mark.parametrize("name", NAMES)
def test_seed_determines_weights(name: str, small: dict[str, onnx.ModelProto]) -> None:
    again = build(name, width=SMALL_WIDTH, size=SMALL_SIZE, batch=SMALL_BATCH)
    other = build(name, width=SMALL_WIDTH, size=SMALL_SIZE, batch=SMALL_BATCH, seed=1)
    assert again.SerializeToString() == small[name].SerializeToString()
    first = {t.name: t.raw_data for t in small[name].graph.initializer}
    second = {t.name: t.raw_data for t in other.graph.initializer}
    assert first.keys() == second.keys()
    assert all(first[key] != second[key] for key in first if len(first[key]) > 8)


@pytest.mark.parametrize("name", NAMES)
def test_width_scales_weights_not_topology(name: str, small: dict[str, onnx.ModelProto]) -> None:
    half = build(name, width=0.5, size=SMALL_SIZE, batch=SMALL_BATCH)
    assert initializer_bytes(small[name]) < initializer_bytes(half)
    assert [n.name for n in half.graph.node] == [n.name for n in small[name].graph.node]
    assert dims(half.graph.output[0]) == dims(small[name].graph.output[0])


# Parameter counts of torchvision's models plus the BN running mean and variance.
TORCHVISION_PARAMETERS = {
    "squeezenet": 1_248_424,
    "resnet18": 11_699_112,
    "mobilenet_v2": 3_538_984,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMETERS))
def test_full_size_matches_torchvision(name: str) -> None:
    model = build(name)
    parameters = sum(math.prod(t.dims) for t in model.graph.initializer if t.dims)
    assert parameters == TORCHVISION_PARAMETERS[name]
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert dims(inferred.graph.output[0]) == [1, 1000]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "parameters"),
    [("alexnet", 61_100_840), ("vgg16", 138_357_544), ("yolov2", 50_676_061)],
)
def test_full_size_big_models(name: str, parameters: int) -> None:
    model = build(name)
    assert sum(math.prod(t.dims) for t in model.graph.initializer) == parameters
    onnx.checker.check_model(model, full_check=True)
    assert dims(model.graph.output[0]) == expected_output_shape(name, default_size(name), 1)


def shapes_at_default_size(name: str) -> dict[str, list[int]]:
    """Per-tensor shapes at the model's full resolution; a tiny width keeps this fast."""
    model = build(name, width=1 / 64)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return {vi.name: dims(vi) for vi in inferred.graph.value_info}


def test_alexnet_and_vgg16_pool_to_torchvision_sizes() -> None:
    assert shapes_at_default_size("alexnet")["pool5"][2:] == [6, 6]
    assert shapes_at_default_size("vgg16")["pool5"][2:] == [7, 7]
    vgg = build("vgg16", width=1 / 64, size=32)
    assert (len(nodes(vgg, "Conv")), len(nodes(vgg, "MaxPool")), len(nodes(vgg, "Gemm"))) == (
        13,
        5,
        3,
    )


def test_yolov2_passthrough_reorg_and_route() -> None:
    # Graph: conv13 (26x26) -> passthrough 1x1 -> reorg SpaceToDepth(2) (13x13) -+
    #        conv13 -> pool5 -> ... -> conv20 (13x13x1024) --------------------- route Concat
    model = build("yolov2", width=1 / 16)
    shapes = shapes_at_default_size("yolov2")
    (reorg,) = nodes(model, "SpaceToDepth")
    (route,) = nodes(model, "Concat")
    assert attr(reorg, "blocksize") == 2
    assert list(route.input) == [reorg.output[0], "conv20/leaky"] and attr(route, "axis") == 1
    assert shapes["conv13/leaky"][2:] == [26, 26] and shapes["reorg"][2:] == [13, 13]
    assert shapes["route"][1] == shapes["reorg"][1] + shapes["conv20/leaky"][1]
    assert len(nodes(model, "LeakyRelu")) == len(nodes(model, "BatchNormalization")) == 22
    assert dims(model.graph.output[0]) == [1, 125, 13, 13]


def test_squeezenet_has_ceil_mode_pools_and_fires(small: dict[str, onnx.ModelProto]) -> None:
    model = small["squeezenet"]
    pools = nodes(model, "MaxPool")
    assert len(pools) == 3 and all(attr(p, "ceil_mode") == 1 for p in pools)
    concats = nodes(model, "Concat")
    assert [c.name for c in concats] == [f"fire{i}/concat" for i in range(2, 10)]
    assert all(
        list(c.input) == [f"{c.name[:5]}/expand1x1/relu", f"{c.name[:5]}/expand3x3/relu"]
        for c in concats
    )


def test_mobilenet_v2_has_depthwise_convs_and_relu6(small: dict[str, onnx.ModelProto]) -> None:
    model = small["mobilenet_v2"]
    weights = {t.name: t for t in model.graph.initializer}
    depthwise = [c for c in nodes(model, "Conv") if attr(c, "group") > 1]
    assert len(depthwise) == 17
    for conv in depthwise:
        out_channels, in_per_group = weights[conv.input[1]].dims[:2]
        assert in_per_group == 1 and attr(conv, "group") == out_channels
    clips = nodes(model, "Clip")
    assert clips and all(list(c.input[1:]) == ["relu6.min", "relu6.max"] for c in clips)
    bounds = [onnx.numpy_helper.to_array(weights[n]).item() for n in ("relu6.min", "relu6.max")]
    assert bounds == [0.0, 6.0]
    assert len(nodes(model, "Add")) == 10


def test_resnet18_blocks(small: dict[str, onnx.ModelProto]) -> None:
    model = small["resnet18"]
    assert len(nodes(model, "Add")) == 8
    assert len(nodes(model, "BatchNormalization")) == 20
    downsamples = [c.name for c in nodes(model, "Conv") if c.name.endswith("/downsample")]
    assert downsamples == ["layer2.0/downsample", "layer3.0/downsample", "layer4.0/downsample"]


@pytest.mark.parametrize("name", NAMES)
def test_min_size_is_the_smallest_that_builds(name: str) -> None:
    low = min_size(name)
    model = build(name, width=0.1, size=low)
    (out,) = run(model)
    assert np.isfinite(out).all()
    if low == 1:
        with pytest.raises(UsageError, match="out of range"):
            build(name, size=0)
        return
    with pytest.raises(UsageError, match="too small") as info:
        build(name, width=0.1, size=low - 1)
    assert str(low) in (info.value.hint or "")
    # The bound is tight: one pixel less and some layer really would be empty.
    b = GraphBuilder(name, width=0.1, size=low - 1, batch=1, seed=0, opset=17)
    with pytest.raises(InternalError):
        zoo._MODULES[name].graph(b)


def test_yolov2_size_must_be_a_multiple_of_32() -> None:
    with pytest.raises(UsageError, match="yolov2") as info:
        build("yolov2", width=0.1, size=400)
    assert "multiple of 32" in (info.value.hint or "")


def test_unknown_name_raises_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown zoo model 'lenet'") as info:
        build("lenet")
    assert info.value.hint == f"choose one of: {', '.join(NAMES)}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"width": -1.0},
        {"width": float("nan")},
        {"batch": 0},
        {"opset": 12},
        {"size": 64.0},
    ],
)
def test_bad_arguments_raise_usage_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        build("squeezenet", **kwargs)  # type: ignore[arg-type]


def test_weights_over_2_gib_raise_usage_error() -> None:
    with pytest.raises(UsageError, match="2 GiB") as info:
        build("vgg16", size=600)
    assert "--size" in (info.value.hint or "")


@pytest.mark.parametrize("opset", [zoo.MIN_OPSET, zoo.MAX_OPSET])
def test_opset_range_runs(opset: int) -> None:
    # The same seeded weights at either end of the opset range compute what the default
    # opset's model computes, output and every intermediate tensor alike.
    model = build("mobilenet_v2", width=SMALL_WIDTH, size=32, opset=opset)
    reference = build("mobilenet_v2", width=SMALL_WIDTH, size=32)
    assert [o.version for o in model.opset_import] == [opset]
    assert [o.version for o in reference.opset_import] == [17]
    onnx.checker.check_model(model, full_check=True)
    tensors = tuple(o for n in reference.graph.node for o in n.output if o != "output")
    got, want = run(model, tensors), run(reference, tensors)
    assert got[0].shape == (1, 1000) and float(np.std(want[0])) > 0
    assert len(got) == len(want) == len(tensors) + 1
    for name, a, r in zip(("output", *tensors), got, want, strict=True):
        scale = max(float(np.max(np.abs(r))), 1e-30)
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


def test_cli_writes_a_model(tmp_path: Path) -> None:
    path = tmp_path / "squeezenet.onnx"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flcompile.models",
            "squeezenet",
            "-o",
            str(path),
            "--width",
            "0.25",
            "--size",
            "64",
            "--batch",
            "2",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 and str(path) in result.stdout
    model = onnx.load(path)
    expected = build("squeezenet", width=0.25, size=64, batch=2, seed=3)
    assert model.SerializeToString() == expected.SerializeToString()


def test_cli_rejects_an_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "x.onnx"
    result = subprocess.run(
        [sys.executable, "-m", "flcompile.models", "lenet", "-o", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown zoo model 'lenet'" in lines[0] and "alexnet" in lines[0]
    assert not path.exists()
