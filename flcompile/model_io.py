"""Model sizes and saving: cheap size estimates, and external data past protobuf's 2 GB limit."""

from __future__ import annotations

from pathlib import Path

import onnx

PROTOBUF_LIMIT = 2**31 - 2**24  # a margin below 2 GiB for everything that is not weights
EXTERNAL_DATA_BYTES = 1_800_000_000


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers' data, without serializing the model (ByteSize is slow)."""
    total = 0
    for t in model.graph.initializer:
        total += len(t.raw_data) or 4 * (
            len(t.float_data) + len(t.int32_data) + len(t.int64_data) * 2 + len(t.double_data) * 2
        )
    return total


def fits_in_protobuf(model: onnx.ModelProto) -> bool:
    """True when the model can be serialized as one protobuf (under 2 GB)."""
    return weight_bytes(model) < PROTOBUF_LIMIT


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
