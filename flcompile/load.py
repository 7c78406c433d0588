"""Front end: read a model file or zoo name, validate it, fix dynamic dims and infer shapes."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from flcompile import models
from flcompile.errors import BadInputError, UsageError, user_path_errors
from flcompile.model_io import fits_in_protobuf, without_weight_data

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A validated, shape-inferred model and where it came from.

    Attributes:
        model: the model with external data loaded and every static shape inferred.
        path: the file it was read from, or "zoo:NAME" for a built-in model.
        sha256: hex digest of the file's bytes (of the serialized model for zoo models).
        name: a short label for messages and summaries.
        data_files: the external data files the model was read with (none for most).
        serialized: a zoo model's bytes as built (what sha256 hashes), kept so that
            onnxruntime loads the original without serializing it again; None for files.
    """

    model: onnx.ModelProto
    path: str
    sha256: str
    name: str
    data_files: tuple[str, ...] = ()
    serialized: bytes | None = field(default=None, repr=False)

    @property
    def original(self) -> onnx.ModelProto | str | bytes:
        """The source model as onnxruntime should load it: the file, or a zoo model's bytes."""
        if self.serialized is not None:
            return self.serialized
        return self.model if self.path.startswith("zoo:") else self.path


def parse_input_shapes(specs: list[str] | None) -> dict[str | None, tuple[int, ...]]:
    """Parse `--input-shape` values: `1x3x224x224` or `name:1x3x224x224`.

    Returns:
        Shapes keyed by input name; the key None stands for "the only input".

    Raises:
        UsageError: a value is not of that form.
    """
    shapes: dict[str | None, tuple[int, ...]] = {}
    for spec in specs or []:
        name, _, dims = spec.rpartition(":")
        if not re.fullmatch(r"\d+(x\d+)*", dims) or any(int(d) == 0 for d in dims.split("x")):
            raise UsageError(
                f"--input-shape '{spec}' is not a shape",
                hint="write it as 1x3x224x224 or NAME:1x3x224x224 with positive sizes",
            )
        shapes[name or None] = tuple(int(d) for d in dims.split("x"))
    return shapes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _data_files(model: onnx.ModelProto, folder: Path) -> tuple[str, ...]:
    """The external data files a model (loaded without them) refers to, relative to `folder`."""
    # onnx's own walk over every tensor, initializers and attributes, as its loader uses.
    tensors = onnx.external_data_helper._get_all_tensors(model)
    locations = {ExternalDataInfo(t).location for t in tensors if uses_external_data(t)}
    return tuple(str(folder / loc) for loc in sorted(locations))


def _read(path: Path) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    label = str(path)
    if not path.exists():
        raise BadInputError(
            f"{label}: no such file",
            hint=f"check the path, or name a zoo model: {', '.join(models.NAMES)}",
        )
    if path.is_dir():
        raise BadInputError(f"{label}: is a directory, not an ONNX file", hint="pass a .onnx file")
    if not os.access(path, os.R_OK):
        raise BadInputError(f"{label}: cannot be read", hint="check the file's permissions")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as e:
        raise BadInputError(
            f"{label}: not an ONNX model (the protobuf does not parse: {type(e).__name__})",
            hint="the file is corrupt, truncated or of another format; re-export it",
        ) from e
    except OSError as e:
        raise BadInputError(f"{label}: cannot be read ({e.strerror or e})") from e
    if not model.HasField("graph") or not model.graph.node:
        raise BadInputError(
            f"{label}: holds no graph nodes (not an ONNX model, or an empty one)",
            hint="the file is corrupt, truncated or of another format; re-export it",
        )
    try:
        data_files = _data_files(model, path.parent)
        onnx.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as e:
        raise BadInputError(
            f"{label}: its external data cannot be read ({e})",
            hint="keep the .data files next to the model, as the exporter wrote them",
        ) from e
    return model, data_files


def _fix_input_dims(model: onnx.ModelProto, shapes: dict[str | None, tuple[int, ...]]) -> None:
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    for key, dims in shapes.items():
        if key is None:
            if len(inputs) != 1:
                names = ", ".join(i.name for i in inputs)
                raise UsageError(
                    f"--input-shape without a name, but the model has inputs {names}",
                    hint="write NAME:1x3x224x224",
                )
            target = inputs[0]
        else:
            matches = [i for i in inputs if i.name == key]
            if not matches:
                names = ", ".join(i.name for i in inputs)
                raise UsageError(
                    f"--input-shape names '{key}', which is not a model input",
                    hint=f"the inputs are: {names}",
                )
            target = matches[0]
        tensor_dims = target.type.tensor_type.shape.dim
        if len(tensor_dims) != len(dims):
            raise UsageError(
                f"--input-shape gives {len(dims)} dims for '{target.name}', "
                f"which has rank {len(tensor_dims)}",
                hint="give one size per dimension",
            )
        for dim, value in zip(tensor_dims, dims, strict=True):
            if dim.HasField("dim_value") and dim.dim_value != value:
                raise UsageError(
                    f"--input-shape sets '{target.name}' to {'x'.join(map(str, dims))} "
                    f"but the model fixes a dim to {dim.dim_value}",
                    hint="only dynamic dims can be set",
                )
            dim.dim_value = value


def infer_shapes(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Strict shape inference, with failures turned into a one-line BadInputError.

    Inference needs the initializers' shapes, not their bytes, so it runs on a copy without
    the large weights, and the inferred value_info and output types are copied back: sending
    hundreds of MB through protobuf serialization twice would dominate a big model's load.
    """
    if not fits_in_protobuf(model):
        log.warning("%s: over 2 GB; shape inference runs on what the file declares", label)
        return model
    light = without_weight_data(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            light, check_type=True, strict_mode=True, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInputError(
            f"{label}: shape inference fails: {first[:300]}",
            hint="the model is inconsistent; re-export it or run onnx.checker on it",
        ) from e
    del model.graph.value_info[:]
    model.graph.value_info.extend(inferred.graph.value_info)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    return model


def check(model: onnx.ModelProto | Path, label: str) -> None:
    """onnx.checker on a model or file, with failures turned into a one-line BadInputError."""
    try:
        onnx.checker.check_model(str(model) if isinstance(model, Path) else model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise BadInputError(
            f"{label}: not a valid ONNX model: {first[:300]}",
            hint="re-export the model or repair it; onnx.checker.check_model shows the details",
        ) from e


def load_model(
    source: str | os.PathLike[str],
    *,
    input_shapes: dict[str | None, tuple[int, ...]] | None = None,
) -> LoadedModel:
    """Load a model file, or build a zoo model when `source` is a zoo name and no such file exists.

    Args:
        source: a path to an .onnx file, or a zoo model name such as "alexnet".
        input_shapes: dims for dynamic inputs, from `parse_input_shapes`.

    Returns:
        The validated model with shapes inferred.

    Raises:
        BadInputError: the file is missing, unreadable, corrupt or inconsistent.
        UsageError: the input shapes do not fit the model.
    """
    path = Path(source)
    data_files: tuple[str, ...] = ()
    if (
        not os.path.lexists(path)
        and isinstance(source, str)
        and re.fullmatch(r"[A-Za-z0-9_]+", source)
    ):
        model = models.build(source)
        label = f"zoo:{source}"
        serialized = model.SerializeToString()
        sha = hashlib.sha256(serialized).hexdigest()
        name = source
    else:
        with user_path_errors(path, "be read", hint="check the path and its permissions"):
            model, data_files = _read(path)
            label, sha, name, serialized = str(path), _sha256(path), path.stem, None
            check(path, label)  # zoo models are checked by their own tests
    if input_shapes:
        _fix_input_dims(model, input_shapes)
    model = infer_shapes(model, label)
    return LoadedModel(
        model=model,
        path=label,
        sha256=sha,
        name=name,
        data_files=data_files,
        serialized=serialized,
    )
