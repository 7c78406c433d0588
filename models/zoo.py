"""Build a zoo model by name: validate the arguments and run that model's builder."""

from __future__ import annotations

import math
from types import ModuleType

import onnx

from flcompile.errors import UsageError

from . import alexnet, mobilenet_v2, resnet18, squeezenet, vgg16, yolov2
from .layers import GraphBuilder

_MODULES: dict[str, ModuleType] = {
    "alexnet": alexnet,
    "squeezenet": squeezenet,
    "yolov2": yolov2,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
}
NAMES: tuple[str, ...] = tuple(_MODULES)

# Clip with min/max inputs needs opset 11; the zoo is tested with onnxruntime from 13 to 21.
MIN_OPSET = 13
MAX_OPSET = 21


def _module(name: str) -> ModuleType:
    try:
        return _MODULES[name]
    except (KeyError, TypeError) as e:
        raise UsageError(
            f"unknown zoo model '{name}'", hint=f"choose one of: {', '.join(NAMES)}"
        ) from e


def default_size(name: str) -> int:
    """The input height and width a zoo model is built at by default (224, YOLOv2 416).

    Raises:
        UsageError: `name` is not in NAMES.
    """
    return _module(name).DEFAULT_SIZE


def min_size(name: str) -> int:
    """The smallest input height and width at which every layer of a zoo model is non-empty.

    Raises:
        UsageError: `name` is not in NAMES.
    """
    return _module(name).MIN_SIZE


def _check_int(what: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"zoo {what} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise UsageError(f"zoo {what} {value} is out of range", hint=f"use {span}")
    return value


def _check_size(name: str, module: ModuleType, size: object) -> int:
    size = _check_int("size", size, 1)
    if size < module.MIN_SIZE:
        raise UsageError(
            f"size {size} is too small for zoo model '{name}': a pooled map would be empty",
            hint=f"use --size {module.MIN_SIZE} or more",
        )
    if size % module.SIZE_STEP:
        raise UsageError(
            f"size {size} does not suit zoo model '{name}'",
            hint=f"use a multiple of {module.SIZE_STEP}, e.g. {module.DEFAULT_SIZE}",
        )
    return size


def build(
    name: str,
    *,
    width: float = 1.0,
    size: int | None = None,
    batch: int = 1,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """Build a zoo CNN in plain ONNX with seeded He-normal weights.

    The model has one float32 NCHW input "input" [batch, 3, size, size] and one output
    "output": logits [batch, 1000] for the classifiers, [batch, 125, size/32, size/32] for
    YOLOv2. The class and detection-head counts do not scale with `width`.

    Args:
        name: one of NAMES.
        width: multiplies every channel count (rounded, at least 1).
        size: input height and width; defaults to the model's (224, YOLOv2 416).
        batch: batch size.
        seed: seed of the numpy generator that draws the weights.
        opset: default-domain opset, MIN_OPSET..MAX_OPSET.

    Returns:
        The model; it passes the full ONNX checker and strict shape inference.

    Raises:
        UsageError: unknown name, or an argument out of range (size too small for the
            model, YOLOv2 size not a multiple of 32, weights over protobuf's 2 GiB).
    """
    module = _module(name)
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise UsageError(f"zoo width must be a number, got {width!r}")
    if not (math.isfinite(width) and width > 0):
        raise UsageError(f"zoo width {width} is out of range", hint="use a width > 0, e.g. 0.25")
    size = _check_size(name, module, module.DEFAULT_SIZE if size is None else size)
    _check_int("batch", batch, 1)
    _check_int("seed", seed, 0)
    _check_int("opset", opset, MIN_OPSET, MAX_OPSET)

    b = GraphBuilder(name, width=float(width), size=size, batch=batch, seed=seed, opset=opset)
    output = module.graph(b)
    metadata = {
        "flcompile.zoo.name": name,
        "flcompile.zoo.width": repr(float(width)),
        "flcompile.zoo.size": str(size),
        "flcompile.zoo.batch": str(batch),
        "flcompile.zoo.seed": str(seed),
    }
    return b.finish(output, doc=module.DOC, metadata=metadata)
