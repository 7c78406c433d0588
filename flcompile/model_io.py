"""Model and file sizes, and saving: cheap size estimates, external data past 2 GB."""

from __future__ import annotations

import math
from pathlib import Path

import onnx

PROTOBUF_LIMIT = 2**31 - 2**24  # a margin below 2 GiB for everything that is not weights
EXTERNAL_DATA_BYTES = 1_800_000_000


def tensor_bytes(tensor: onnx.TensorProto) -> int:
    """A tensor's data size from its dims and type: reading `raw_data` from Python would copy
    the bytes, and upb's ByteSize walks them, both slow for hundreds of MB of weights."""
    numel = math.prod(tensor.dims)
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):  # strings and other odd types: count one byte
        itemsize = 1
    return numel * itemsize


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers' data."""
    return sum(tensor_bytes(t) for t in model.graph.initializer)


def fits_in_protobuf(model: onnx.ModelProto) -> bool:
    """True when the model can be serialized as one protobuf (under 2 GB)."""
    return weight_bytes(model) < PROTOBUF_LIMIT


def without_weight_data(model: onnx.ModelProto, threshold: int = 4096) -> onnx.ModelProto:
    """A copy of `model` whose initializers over `threshold` bytes keep name, type and dims but
    no data: enough for shape inference, and small however large the weights are."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    for tensor in light.graph.initializer:
        if tensor_bytes(tensor) > threshold:
            tensor.ClearField("raw_data")
    return light


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Write a model; over ~1.8 GB of weights they go to `NAME.data` as external data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if weight_bytes(model) > EXTERNAL_DATA_BYTES:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
        )
    else:
        onnx.save_model(model, str(path))


def file_sizes(directory: Path) -> dict[str, int]:
    """Every file under `directory` (path relative to it, with "/") -> its size in bytes."""
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
