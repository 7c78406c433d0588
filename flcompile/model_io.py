"""Model and file sizes, copies and saving: cheap size estimates, weight-free copies, a fast
export of a graph, and external data past protobuf's 2 GB limit.

Large weights dominate a big model's compile time, so every function here copies them at most
once: reading `raw_data` from Python, upb's `extend` (which re-serializes each tensor) and
`ByteSize` all cost a pass over hundreds of MB.
"""

from __future__ import annotations

import math
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs
from google.protobuf.message import Message
from onnx_graphsurgeon.ir.tensor import LazyValues

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


def _copy_fields(dst: Message, src: Message, skip: str) -> None:
    """Copy every field of `src` but `skip` into `dst` (sub-messages deep, by CopyFrom).

    Presence is tested before a value is read: reading `skip` from Python would copy it.
    """
    for field in src.DESCRIPTOR.fields:
        if field.name == skip:
            continue
        if field.is_repeated:
            values = getattr(src, field.name)
            if values:
                getattr(dst, field.name).extend(values)
        elif not src.HasField(field.name):
            continue
        elif field.type == field.TYPE_MESSAGE:
            getattr(dst, field.name).CopyFrom(getattr(src, field.name))
        else:
            setattr(dst, field.name, getattr(src, field.name))


def _light_tensor(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """`tensor` without its raw data (name, type, dims and the rest kept)."""
    light = onnx.TensorProto()
    _copy_fields(light, tensor, skip="raw_data")
    return light


def _is_large(tensor: onnx.TensorProto, threshold: int) -> bool:
    return tensor.HasField("raw_data") and tensor_bytes(tensor) > threshold


def without_weight_data(model: onnx.ModelProto, threshold: int = 4096) -> onnx.ModelProto:
    """A copy of `model` whose initializers over `threshold` bytes keep name, type and dims but
    no data: enough for shape inference, and small however large the weights are. The large
    tensors' data is never copied, not even once."""
    light = onnx.ModelProto()
    _copy_fields(light, model, skip="graph")
    _copy_fields(light.graph, model.graph, skip="initializer")
    for tensor in model.graph.initializer:
        if _is_large(tensor, threshold):
            light.graph.initializer.append(_light_tensor(tensor))
        else:
            light.graph.initializer.add().CopyFrom(tensor)
    return light


def export_graph(graph: gs.Graph, threshold: int = 4096) -> onnx.ModelProto:
    """`gs.export_onnx(graph)`, with each large initializer copied once, by CopyFrom.

    gs hands its initializers to onnx.helper.make_graph, whose `extend` re-serializes every
    tensor, and make_model then copies the graph again. Here the constants that still hold
    their source TensorProto (gs's LazyValues, i.e. the weights as imported) are exported as
    data-free stand-ins, and their data is copied into the finished model.

    Args:
        graph: the graph to export (left as it was).
        threshold: initializers of at most this many bytes are exported by gs as usual.

    Returns:
        The model, equal to what `gs.export_onnx(graph)` returns.
    """
    sources: dict[str, onnx.TensorProto] = {}
    swapped: list[tuple[gs.Constant, LazyValues]] = []
    for tensor in graph.tensors().values():
        # `_values`: gs has no public way to ask whether a constant is still lazily loaded.
        values = getattr(tensor, "_values", None)
        if isinstance(values, LazyValues) and _is_large(values.tensor, threshold):
            sources[tensor.name] = values.tensor
            swapped.append((tensor, values))
            tensor.values = LazyValues(_light_tensor(values.tensor))
    try:
        model = gs.export_onnx(graph)
    finally:
        for tensor, values in swapped:
            tensor.values = values
    for initializer in model.graph.initializer:
        source = sources.get(initializer.name)
        if source is not None:
            name = initializer.name
            initializer.CopyFrom(source)
            initializer.name = name
    return model


def save_model(model: onnx.ModelProto, path: Path) -> bytes | None:
    """Write a model; over ~1.8 GB of weights they go to `NAME.data` as external data.

    Returns:
        The bytes written, serialized once, so that a check need not read the file back;
        None for a model written with external data (check that one by its path).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if weight_bytes(model) > EXTERNAL_DATA_BYTES:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
        )
        return None
    data = model.SerializeToString()
    path.write_bytes(data)
    return data


def file_sizes(directory: Path) -> dict[str, int]:
    """Every file under `directory` (path relative to it, with "/") -> its size in bytes."""
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
