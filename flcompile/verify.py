"""Check that `edge(device(x))` computes what the original model computes, in onnxruntime.

The original model, the device/edge pair and (optionally) `tiled.onnx` run on the same
input at the same graph optimization level; every original output and the fused tensor F
are compared elementwise with Polygraphy-style tolerances scaled to the reference's
magnitude (see `compare`). A mismatch is reported, not raised: `VerifyResult.raise_if_failed`
turns it into a `VerificationError` (exit code 3) for the CLI.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from flcompile.errors import BadInputError, InternalError, VerificationError
from flcompile.model_io import PROTOBUF_LIMIT, weight_bytes, without_weight_data
from flcompile.send_accuracy import argmax_agreement, check_overflow

logger = logging.getLogger(__name__)

#: A model in memory, serialized, or as a file path (a path is needed for models over 2 GB).
ModelLike = onnx.ModelProto | bytes | str | os.PathLike

_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT16,
}
_INT_TYPES = {
    onnx.TensorProto.INT8,
    onnx.TensorProto.INT16,
    onnx.TensorProto.INT32,
    onnx.TensorProto.INT64,
    onnx.TensorProto.UINT8,
    onnx.TensorProto.UINT16,
    onnx.TensorProto.UINT32,
    onnx.TensorProto.UINT64,
}


# --------------------------------------------------------------------------- loading


def _is_path(model: ModelLike) -> bool:
    return isinstance(model, (str, os.PathLike))


def load_structure(model: ModelLike) -> onnx.ModelProto:
    """The model's graph without external weights (enough for names, types and shapes).

    Args:
        model: a ModelProto (returned as is), its serialized bytes, or a path.

    Returns:
        The model.

    Raises:
        BadInputError: the file cannot be read as an ONNX model.
    """
    if isinstance(model, bytes):
        return onnx.load_model_from_string(model)
    if not _is_path(model):
        return model
    try:
        return onnx.load(os.fspath(model), load_external_data=False)
    except Exception as e:  # protobuf, OS and onnx errors all mean the same to the user
        raise BadInputError(
            f"{os.fspath(model)}: cannot read the ONNX model ({e})",
            hint="check that the file exists and is a valid .onnx model",
        ) from e


def _byte_size(model: onnx.ModelProto) -> int:
    try:
        return weight_bytes(model)
    except Exception:  # some protobuf backends refuse to size huge messages
        return PROTOBUF_LIMIT + 1


def _session_options(
    level: ort.GraphOptimizationLevel, threads: int | None = None
) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    if threads is not None:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    return so


@contextlib.contextmanager
def open_session(
    model: ModelLike,
    *,
    extra_outputs: Sequence[str] = (),
    graph_optimization_level: ort.GraphOptimizationLevel = (
        ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    ),
    threads: int | None = None,
) -> Iterator[ort.InferenceSession]:
    """Open a CPU onnxruntime session on `model`, optionally exposing extra tensors as outputs.

    Models over 2 GB are handed to onnxruntime as files: a path is used as is, and an
    in-memory (or modified) model over the limit is saved with external data to a temporary
    directory that lives as long as the session. Serialized bytes go to onnxruntime as they
    are.

    Args:
        model: a ModelProto, its serialized bytes, or the path of an .onnx file.
        extra_outputs: intermediate tensors to add as graph outputs (on a copy; the names
            are kept).
        graph_optimization_level: onnxruntime's graph optimization level.
        threads: intra-op threads (inter-op is then 1); None keeps onnxruntime's default.

    Yields:
        The session; the temporary directory, if any, is removed on exit.

    Raises:
        BadInputError: the model cannot be read or onnxruntime refuses it.
    """
    so = _session_options(graph_optimization_level, threads)
    providers = ["CPUExecutionProvider"]
    label = _label(model)
    with contextlib.ExitStack() as stack:
        extra = [n for n in extra_outputs if n]
        if isinstance(model, bytes) and not extra:
            source: Any = model
        elif _is_path(model) and not extra:
            source = os.fspath(model)
        else:
            proto = _with_outputs(model, extra) if extra else model
            if _byte_size(proto) <= PROTOBUF_LIMIT:
                source = proto.SerializeToString()
            else:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flc-verify-")))
                source = os.fspath(tmp / "model.onnx")
                onnx.save_model(
                    proto,
                    source,
                    save_as_external_data=True,
                    all_tensors_to_one_file=True,
                    location="model.onnx.data",
                )
        try:
            session = ort.InferenceSession(source, so, providers=providers)
        except Exception as e:
            raise BadInputError(
                f"{label}: onnxruntime cannot load the model ({_first_line(e)})",
                hint="check the model with onnx.checker; rerun with --debug for details",
            ) from e
        yield session


_BASIC = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


class SessionCache:
    """onnxruntime sessions opened once per model and settings, and shared.

    Verification and timing run the same models: sharing their sessions spares loading a
    large model into onnxruntime twice. A model in memory (a proto or bytes) is known by its
    identity, and the cache holds a reference to it, so it must not change while the cache is
    open. Use it as a context manager: the sessions (and their temporary files) close on exit,
    or one by one with `release` once a session has had its last use.
    """

    def __init__(self) -> None:
        self._open: dict[tuple, tuple[ModelLike, ort.InferenceSession, contextlib.ExitStack]] = {}

    @staticmethod
    def _key(
        model: ModelLike,
        threads: int | None,
        extra_outputs: Sequence[str],
        level: ort.GraphOptimizationLevel,
    ) -> tuple:
        identity = os.fspath(model) if _is_path(model) else id(model)
        return identity, threads, tuple(n for n in extra_outputs if n), int(level)

    def get(
        self,
        model: ModelLike,
        *,
        threads: int | None = None,
        extra_outputs: Sequence[str] = (),
        graph_optimization_level: ort.GraphOptimizationLevel = _BASIC,
    ) -> ort.InferenceSession:
        """The session of `model` with these settings, opened on first use.

        Args:
            model: a ModelProto, its serialized bytes, or the path of an .onnx file.
            threads: intra-op threads (inter-op is then 1); None keeps onnxruntime's default.
            extra_outputs: intermediate tensors to add as graph outputs.
            graph_optimization_level: onnxruntime's graph optimization level.

        Returns:
            The session, open until it is released or the cache closes.

        Raises:
            BadInputError: the model cannot be read or onnxruntime refuses it.
        """
        key = self._key(model, threads, extra_outputs, graph_optimization_level)
        if key not in self._open:
            stack = contextlib.ExitStack()
            session = stack.enter_context(
                open_session(
                    model,
                    extra_outputs=key[2],
                    graph_optimization_level=graph_optimization_level,
                    threads=threads,
                )
            )
            self._open[key] = (model, session, stack)
        return self._open[key][1]

    def release(
        self,
        model: ModelLike,
        *,
        threads: int | None = None,
        extra_outputs: Sequence[str] = (),
        graph_optimization_level: ort.GraphOptimizationLevel = _BASIC,
    ) -> None:
        """Close the session `get` gave for these arguments, if open, to free its memory."""
        key = self._key(model, threads, extra_outputs, graph_optimization_level)
        entry = self._open.pop(key, None)
        if entry is not None:
            entry[2].close()

    def close(self) -> None:
        """Close every session."""
        while self._open:
            _, (_, _, stack) = self._open.popitem()
            stack.close()

    def __enter__(self) -> SessionCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _label(model: ModelLike) -> str:
    if _is_path(model):
        return os.fspath(model)
    if isinstance(model, bytes):
        return "<serialized model>"
    return model.graph.name or "<model>"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _with_outputs(model: ModelLike, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of `model` (weights included) with `names` added as graph outputs."""
    if _is_path(model):
        proto = onnx.load(os.fspath(model), load_external_data=True)
    elif isinstance(model, bytes):
        proto = onnx.load_model_from_string(model)
    else:
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    present = {o.name for o in proto.graph.output}
    missing = [n for n in names if n not in present]
    if not missing:
        return proto
    known = _tensor_names(proto.graph)
    for name in missing:
        if name not in known:
            raise BadInputError(
                f"tensor '{name}' is not in the model '{proto.graph.name}'",
                hint="pass the name of an existing tensor of the model",
            )
    elem_types = _elem_types(proto, missing)
    for name in missing:
        vi = onnx.ValueInfoProto(name=name)
        if elem_types.get(name):
            # Shape left unknown on purpose: onnxruntime infers it; a wrong one would break.
            vi.type.tensor_type.elem_type = elem_types[name]
        proto.graph.output.append(vi)
    return proto


def _tensor_names(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(o for o in node.output if o)
    return names


def _elem_types(model: onnx.ModelProto, names: Sequence[str]) -> dict[str, int]:
    """Element types of `names`: from the model's value_info, else from shape inference."""
    found: dict[str, int] = {}
    graph = model.graph
    for vi in [*graph.value_info, *graph.input, *graph.output]:
        if vi.name in names and vi.type.tensor_type.elem_type:
            found[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        if init.name in names:
            found[init.name] = init.data_type
    todo = [n for n in names if n not in found]
    if not todo:
        return found
    try:
        inferred = onnx.shape_inference.infer_shapes(without_weight_data(model))
    except Exception as e:  # inference is a convenience here; ORT can type the output itself
        logger.debug("shape inference failed while typing %s: %s", todo, e)
        return found
    for vi in inferred.graph.value_info:
        if vi.name in todo and vi.type.tensor_type.elem_type:
            found[vi.name] = vi.type.tensor_type.elem_type
    return found


# --------------------------------------------------------------------------- feeds


def make_feeds(
    model: ModelLike,
    *,
    seed: int = 0,
    input_path: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Inputs for every graph input of `model`: seeded random data, or a user's .npy file.

    Float inputs get standard-normal values, integer inputs small integers in [0, 4) and
    bool inputs random booleans, all from `numpy.random.default_rng(seed)` in input order.
    Graph inputs that are also initializers are skipped.

    Args:
        model: the model (or its path) whose inputs to feed.
        seed: the random seed.
        input_path: a .npy file holding the input of a single-input model; its dtype must
            match the input's exactly and its shape every static dim.

    Returns:
        One array per graph input, by name.

    Raises:
        BadInputError: a dim has no static value (and no file gives it), the file is
            missing, not a .npy array, or of the wrong shape or dtype, or an input type
            is not supported.
    """
    proto = load_structure(model)
    init_names = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in init_names]
    if input_path is not None:
        if len(inputs) != 1:
            raise BadInputError(
                f"--input {os.fspath(input_path)}: the model has {len(inputs)} inputs "
                f"({', '.join(i.name for i in inputs)}), a .npy file can feed only one",
                hint="drop --input to verify on seeded random data",
            )
        return {inputs[0].name: _load_npy(inputs[0], input_path)}

    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for vi in inputs:
        elem_type = _input_elem_type(vi)
        shape = _static_shape(vi)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        if elem_type in _FLOAT_TYPES:
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        elif elem_type in _INT_TYPES:
            feeds[vi.name] = rng.integers(0, 4, size=shape).astype(dtype)
        elif elem_type == onnx.TensorProto.BOOL:
            feeds[vi.name] = rng.random(shape) < 0.5
        else:
            raise BadInputError(
                f"input '{vi.name}' has element type "
                f"{onnx.TensorProto.DataType.Name(elem_type)}, which flcompile cannot "
                "generate data for",
                hint="pass --input FILE.npy with the input, or --no-verify",
            )
    return feeds


def _input_elem_type(vi: onnx.ValueInfoProto) -> int:
    if vi.type.WhichOneof("value") != "tensor_type" or not vi.type.tensor_type.elem_type:
        raise BadInputError(
            f"input '{vi.name}' is not a typed tensor",
            hint="flcompile feeds tensor inputs only; pass --no-verify",
        )
    return vi.type.tensor_type.elem_type


def _static_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
    tensor_type = vi.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise BadInputError(
            f"input '{vi.name}' has no shape (unknown rank)",
            hint="pass --input-shape NAME:1x3x224x224 or --input FILE.npy",
        )
    shape = []
    for axis, dim in enumerate(tensor_type.shape.dim):
        if axis == 0 and not dim.HasField("dim_value") and len(tensor_type.shape.dim) == 4:
            logger.info("input %r has a symbolic batch; verifying with batch 1", vi.name)
            shape.append(1)
            continue
        if not dim.HasField("dim_value"):
            what = f"'{dim.dim_param}'" if dim.dim_param else "without a value"
            raise BadInputError(
                f"input '{vi.name}' dim {axis} is dynamic ({what})",
                hint=f"pass --input-shape {vi.name}:1x3x224x224 (your sizes) to fix it",
            )
        shape.append(int(dim.dim_value))
    return tuple(shape)


def _load_npy(vi: onnx.ValueInfoProto, input_path: str | os.PathLike) -> np.ndarray:
    path = os.fspath(input_path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise BadInputError(
            f"--input {path}: no such file", hint="pass the path of an existing .npy file"
        ) from e
    except (OSError, ValueError, EOFError) as e:
        raise BadInputError(
            f"--input {path}: not a readable .npy array ({_first_line(e)})",
            hint="save the input with numpy.save",
        ) from e
    if not isinstance(data, np.ndarray):
        if hasattr(data, "close"):
            data.close()
        raise BadInputError(
            f"--input {path}: holds a {type(data).__name__}, not a single array",
            hint="save one array with numpy.save (not numpy.savez)",
        )
    elem_type = _input_elem_type(vi)
    want_dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    dims = vi.type.tensor_type.shape.dim if vi.type.tensor_type.HasField("shape") else None
    want = (
        None
        if dims is None
        else tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in dims)
    )
    shape_ok = want is None or (
        len(want) == data.ndim
        and all(w is None or w == s for w, s in zip(want, data.shape, strict=True))
    )
    if data.dtype != want_dtype or not shape_ok:
        want_text = "?" if want is None else "x".join("?" if w is None else str(w) for w in want)
        raise BadInputError(
            f"--input {path}: holds {data.dtype} {'x'.join(map(str, data.shape)) or 'scalar'}, "
            f"but input '{vi.name}' expects {want_dtype} {want_text}",
            hint="save an array of the expected shape and dtype with numpy.save",
        )
    return data


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class TensorComparison:
    """How one tensor compared against its reference.

    Attributes:
        name: the tensor's name.
        shape: the reference's shape.
        max_abs_err: max |a - r| over the elements (inf when NaNs or shapes disagree).
        max_rel_err: max_abs_err divided by the reference's scale, max |r|.
        passed: whether every element is within tolerance.
        needed_atol: the smallest atol that would pass with the same rtol (inf if none).
        needed_rtol: the smallest rtol that would pass with the same atol (inf if none).
        reason: why it failed beyond plain numbers (shape, dtype, NaN), else None.
    """

    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    passed: bool
    needed_atol: float
    needed_rtol: float
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `verify.compared[]` entry of plan.json (non-finite numbers become null)."""
        return {
            "name": self.name,
            "max_abs_err": _json_float(self.max_abs_err),
            "max_rel_err": _json_float(self.max_rel_err),
            "passed": self.passed,
        }


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _failed(name: str, shape: tuple[int, ...], reason: str) -> TensorComparison:
    inf = math.inf
    return TensorComparison(name, shape, inf, inf, False, inf, inf, reason)


FLOAT_ULPS = 8


def compare(
    name: str,
    actual: np.ndarray,
    reference: np.ndarray,
    *,
    rtol: float,
    atol: float,
) -> TensorComparison:
    """Compare `actual` against `reference` elementwise, with tolerances scaled to the reference.

    The rule, as Polygraphy's simple comparison but with atol relative to the reference's
    magnitude: with scale = max |r| over the finite reference values (1.0 if that is 0),
    the tensors match iff, for every element,

        |a - r| <= atol * scale + rtol * |r|

    Equal values (same infinities, NaN against NaN) always match; NaN against a number
    fails. max_rel_err is max |a - r| / scale. Random-weight nets can have near-zero
    outputs, so scaling atol keeps a 1e-9-sized tensor from passing vacuously.

    Neither tolerance goes below FLOAT_ULPS units in the last place of the tensor's dtype:
    a float16 model rounds every tensor it sends to float16, while onnxruntime may keep an
    unsplit chain in float32, so 1e-5 would fail a correct float16 split.

    Args:
        name: the tensor's name, for the report.
        actual: the computed values (device/edge or tiled).
        reference: the original model's values.
        rtol: relative tolerance, per element.
        atol: absolute tolerance, in units of the reference's scale.

    Returns:
        The comparison; a shape or dtype mismatch gives passed=False with a reason.
    """
    a, r = np.asarray(actual), np.asarray(reference)
    shape = tuple(int(s) for s in r.shape)
    settled = _settled(name, shape, a, r)
    if settled is not None:
        return settled
    if np.issubdtype(r.dtype, np.floating):
        ulp = FLOAT_ULPS * float(np.finfo(r.dtype).eps)
        rtol, atol = max(rtol, ulp), max(atol, ulp)
    diff, abs_r, scale = _errors(a, r)
    passed = bool(np.all(diff <= atol * scale + rtol * abs_r))
    max_abs = float(diff.max())
    needed_atol, needed_rtol = _needed_tolerances(diff, abs_r, scale, rtol=rtol, atol=atol)
    reason = None
    if not passed and math.isinf(max_abs):
        n_bad = int(np.count_nonzero(np.isinf(diff)))
        reason = f"{n_bad} element(s) are NaN or infinite where the reference is not"
    return TensorComparison(
        name=name,
        shape=shape,
        max_abs_err=max_abs,
        max_rel_err=max_abs / scale,
        passed=passed,
        needed_atol=needed_atol,
        needed_rtol=needed_rtol,
        reason=reason,
    )


def _settled(
    name: str, shape: tuple[int, ...], a: np.ndarray, r: np.ndarray
) -> TensorComparison | None:
    """The comparison when no arithmetic is needed (shape or dtype differ, or all equal)."""
    if a.shape != r.shape:
        return _failed(name, shape, f"shape {a.shape} differs from the reference's {r.shape}")
    if a.dtype != r.dtype:
        return _failed(name, shape, f"dtype {a.dtype} differs from the reference's {r.dtype}")
    if r.size == 0 or np.array_equal(a, r):  # exact equality (NaN aside) needs no arithmetic
        return TensorComparison(name, shape, 0.0, 0.0, True, 0.0, 0.0)
    return None


def _errors(a: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """|a - r| per element (0 where equal, inf for NaN against a number), |r| with the
    non-finite values as 0, and the reference's scale: max finite |r|, or 1.0 if that is 0."""
    a64 = a.astype(np.float64)
    r64 = r.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        same = (a64 == r64) | (np.isnan(a64) & np.isnan(r64))
        diff = np.where(same, 0.0, np.abs(a64 - r64))
    diff = np.where(np.isnan(diff), np.inf, diff)  # a NaN against a number is infinitely wrong
    abs_r = np.abs(r64)
    finite_r = abs_r[np.isfinite(abs_r)]
    scale = float(finite_r.max()) if finite_r.size else 0.0
    scale = scale if scale > 0.0 else 1.0
    abs_r = np.where(np.isfinite(abs_r), abs_r, 0.0)
    return diff, abs_r, scale


def _needed_tolerances(
    diff: np.ndarray, abs_r: np.ndarray, scale: float, *, rtol: float, atol: float
) -> tuple[float, float]:
    """The smallest atol that passes with `rtol`, and the smallest rtol with `atol`."""
    with np.errstate(invalid="ignore", divide="ignore"):
        needed_atol = float(np.max(np.maximum(diff - rtol * abs_r, 0.0))) / scale
        over = np.maximum(diff - atol * scale, 0.0)
        rel_need = np.where(over == 0.0, 0.0, over / abs_r)
    return needed_atol, float(np.max(rel_need))


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify_split`: one comparison per original output and the fused tensor.

    Attributes:
        passed: whether every comparison passed.
        max_abs_err: the largest max_abs_err over the comparisons.
        max_rel_err: the largest max_rel_err over the comparisons.
        atol: the absolute tolerance used (scaled to each reference's magnitude).
        rtol: the relative tolerance used.
        seed: the seed of the random input (recorded; the feeds are made by the caller).
        compared: the comparisons: the original outputs, the fused tensor, then a failed
            entry for each original output that was not compared.
        argmax_agree: rows of the 2-D (batch × classes) outputs whose argmax is unchanged.
        argmax_rows: rows of the 2-D outputs compared (0: the model has none).
        inputs: how many inputs were verified (`--verify-inputs`); the errors are the
            largest over them.
    """

    passed: bool
    max_abs_err: float
    max_rel_err: float
    atol: float
    rtol: float
    seed: int
    compared: tuple[TensorComparison, ...]
    argmax_agree: int = 0
    argmax_rows: int = 0
    inputs: int = 1

    @classmethod
    def summarize(
        cls,
        comparisons: Sequence[TensorComparison],
        *,
        expected: Sequence[str],
        atol: float,
        rtol: float,
        seed: int,
        argmax: tuple[int, int] = (0, 0),
    ) -> VerifyResult:
        """The result of `comparisons`, failing unless every expected tensor was compared.

        Args:
            comparisons: the comparisons made.
            expected: the tensors that must be among them (the original's outputs).
            atol: the absolute tolerance used.
            rtol: the relative tolerance used.
            seed: the seed of the random input.
            argmax: (rows whose argmax is unchanged, rows compared).

        Returns:
            The result; each expected tensor without a comparison adds a failed one, and
            so does an empty `comparisons`: a check that compared nothing never passes.
        """
        done = {c.name for c in comparisons}
        missing = [
            _failed(n, (), "not among edge.onnx's outputs") for n in expected if n not in done
        ]
        compared = (*comparisons, *missing) or (_failed("(none)", (), "nothing was compared"),)
        return cls(
            passed=all(c.passed for c in compared),
            max_abs_err=max(c.max_abs_err for c in compared),
            max_rel_err=max(c.max_rel_err for c in compared),
            atol=float(atol),
            rtol=float(rtol),
            seed=int(seed),
            compared=compared,
            argmax_agree=argmax[0],
            argmax_rows=argmax[1],
        )

    @classmethod
    def merge(cls, results: Sequence[VerifyResult]) -> VerifyResult:
        """One result for several inputs: per tensor the worst comparison, argmax rows summed.

        Args:
            results: one result per input, all with the same tolerances; the first's seed
                is kept.

        Returns:
            The merged result (`results[0]` itself when there is one).
        """
        if len(results) == 1:
            return results[0]
        by_name: dict[str, list[TensorComparison]] = {}
        for r in results:
            for c in r.compared:
                by_name.setdefault(c.name, []).append(c)
        compared = tuple(_worst(cs) for cs in by_name.values())
        first = results[0]
        return replace(
            first,
            passed=all(r.passed for r in results),
            max_abs_err=max(r.max_abs_err for r in results),
            max_rel_err=max(r.max_rel_err for r in results),
            compared=compared,
            argmax_agree=sum(r.argmax_agree for r in results),
            argmax_rows=sum(r.argmax_rows for r in results),
            inputs=sum(r.inputs for r in results),
        )

    @property
    def first_failure(self) -> TensorComparison | None:
        """The first comparison that failed, or None."""
        return next((c for c in self.compared if not c.passed), None)

    def to_json(self) -> dict[str, Any]:
        """plan.json's `verify{...}` (docs/design.md §6); non-finite numbers become null."""
        return {
            "passed": self.passed,
            "max_abs_err": _json_float(self.max_abs_err),
            "max_rel_err": _json_float(self.max_rel_err),
            "atol": self.atol,
            "rtol": self.rtol,
            "seed": self.seed,
            "inputs": self.inputs,
            "argmax_unchanged": [self.argmax_agree, self.argmax_rows],
            "compared": [c.to_json() for c in self.compared],
        }

    def raise_if_failed(self, model_label: str) -> None:
        """Raise if any comparison failed.

        Args:
            model_label: the model's file or zoo name, to start the message with.

        Raises:
            VerificationError: names the first failing tensor, its errors and the tolerance.
        """
        bad = self.first_failure
        if bad is None:
            return
        detail = f": {bad.reason}" if bad.reason else ""
        needs = [
            f"{label}={value:.3g}"
            for label, value in (("atol", bad.needed_atol), ("rtol", bad.needed_rtol))
            if math.isfinite(value)
        ]
        need_text = f" (would need {' or '.join(needs)})" if needs else ""
        raise VerificationError(
            f"{model_label}: verification failed on tensor '{bad.name}'{detail}: "
            f"max abs err {bad.max_abs_err:.3g}, max rel err {bad.max_rel_err:.3g} "
            f"exceed atol={self.atol:g} (x scale), rtol={self.rtol:g}{need_text}",
            hint="rerun with --debug to keep the models and inspect them",
        )


def _worst(comparisons: Sequence[TensorComparison]) -> TensorComparison:
    """One tensor's comparisons over several inputs as one: the largest errors and needs."""
    first = comparisons[0]
    return replace(
        first,
        max_abs_err=max(c.max_abs_err for c in comparisons),
        max_rel_err=max(c.max_rel_err for c in comparisons),
        passed=all(c.passed for c in comparisons),
        needed_atol=max(c.needed_atol for c in comparisons),
        needed_rtol=max(c.needed_rtol for c in comparisons),
        reason=next((c.reason for c in comparisons if c.reason), None),
    )


def _run(session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InternalError(f"no value for model input(s) {', '.join(missing)}")
    outputs = [o.name for o in session.get_outputs()]
    values = session.run(outputs, {n: feeds[n] for n in names})
    return dict(zip(outputs, values, strict=True))


@dataclass(frozen=True)
class FusedCheck:
    """The fused tensor F, to compare between the original and the tiled model.

    Attributes:
        tensor: the name of F in the original (and in `tiled`).
        tiled: tiled.onnx (or its prefix up to F), whose F is checked; None computes F's
            reference, which checks that F exists, but compares nothing.
        reference: the original's subgraph from the inputs to F, when given: F's reference
            then comes from it rather than from an extra output on the original, which
            spares loading and re-serializing a large original twice.
        tolerance: F's (rtol, atol), when they differ from the outputs' (F comes from the
            tiled model, which sends nothing, so it stays exact under float16 sends).
    """

    tensor: str
    tiled: ModelLike | None = None
    reference: ModelLike | None = None
    tolerance: tuple[float, float] | None = None


@dataclass(frozen=True)
class VerifyOptions:
    """How `verify_split` compares, and what it checks besides the original's outputs.

    Attributes:
        rtol: relative tolerance (see `compare`).
        atol: absolute tolerance, scaled to each reference's magnitude (see `compare`).
        seed: the seed the feeds were made with, recorded in the result.
        device_threads: intra-op threads of device.onnx (None: onnxruntime's default).
        edge_threads: intra-op threads of edge.onnx and the original, which timing then
            reuses (`time_split` times the original at the edge's thread count too).
        fused: the fused tensor to check too, or None.
        cast_sends: the sends device.onnx casts to float16 (`--send-dtype`), checked for
            overflow.
        input_index: which of the verification inputs this is, for messages.
    """

    rtol: float = 1e-5
    atol: float = 1e-5
    seed: int = 0
    device_threads: int | None = None
    edge_threads: int | None = None
    fused: FusedCheck | None = None
    cast_sends: tuple[str, ...] = ()
    input_index: int = 0


def verify_split(
    original: ModelLike,
    device: ModelLike,
    edge: ModelLike,
    feeds: Mapping[str, np.ndarray],
    *,
    options: VerifyOptions | None = None,
    sessions: SessionCache | None = None,
) -> VerifyResult:
    """Run the original and `edge(device(x))` on `feeds` and compare them.

    Every output of the original is compared, by name, with the edge's output. With
    `options.fused` and its tiled model, the fused tensor F of the original is compared with
    the tiled model's F too. Every session uses onnxruntime's basic graph optimizations. A
    mismatch does not raise; see `VerifyResult.raise_if_failed`.

    Args:
        original: the source model (ModelProto, its bytes or a path).
        device: device.onnx; its inputs are the original's inputs.
        edge: edge.onnx; its inputs are device.onnx's outputs, by name.
        feeds: the original's inputs, e.g. from `make_feeds`.
        options: tolerances, threads and the fused-tensor check (default: `VerifyOptions()`).
        sessions: where to open the sessions; pass the one that timing will use to load
            each model once. None: a private cache, closed on return.

    Returns:
        The comparisons and their summary: it fails when an original output was not
        compared, or when nothing was.

    Raises:
        BadInputError: a model cannot be loaded or F is not one of its tensors.
        SendOverflowError: a send cast to float16 overflows (`options.cast_sends`).
        InternalError: edge.onnx needs an input that device.onnx does not produce.
    """
    options = options or VerifyOptions()
    if sessions is None:
        with SessionCache() as own:
            return verify_split(original, device, edge, feeds, options=options, sessions=own)
    outputs, ref = _run_reference(original, feeds, options, sessions)
    got = _run_split(device, edge, feeds, options, sessions)
    comparisons = _compare_outputs(outputs, got, ref, options)
    fused = options.fused
    if fused is not None and fused.tiled is not None:
        comparisons.append(_compare_fused(fused, feeds, ref[fused.tensor], options, sessions))
    result = VerifyResult.summarize(
        comparisons,
        expected=outputs,
        atol=options.atol,
        rtol=options.rtol,
        seed=options.seed,
        argmax=argmax_agreement(outputs, got, ref),
    )
    _log(result)
    return result


def verify_split_inputs(
    original: ModelLike,
    device: ModelLike,
    edge: ModelLike,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    options: VerifyOptions | None = None,
    sessions: SessionCache | None = None,
) -> VerifyResult:
    """`verify_split` on each of several inputs, merged (`VerifyResult.merge`).

    Args:
        original: the source model.
        device: device.onnx.
        edge: edge.onnx.
        feeds: the inputs; the i-th is recorded as seed `options.seed + i`.
        options: as for `verify_split`.
        sessions: as for `verify_split`; the sessions are opened once for all inputs.

    Returns:
        The worst comparison per tensor over the inputs, and the argmax rows of all.

    Raises:
        BadInputError: as `verify_split`.
    """
    options = options or VerifyOptions()
    if sessions is None:
        with SessionCache() as own:
            return verify_split_inputs(original, device, edge, feeds, options=options, sessions=own)
    results = [
        verify_split(
            original,
            device,
            edge,
            feed,
            options=replace(options, input_index=i),
            sessions=sessions,
        )
        for i, feed in enumerate(feeds)
    ]
    return VerifyResult.merge(results)


def _run_reference(
    original: ModelLike,
    feeds: Mapping[str, np.ndarray],
    options: VerifyOptions,
    sessions: SessionCache,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """The original's output names, and its values on `feeds` with F's (if checked) added."""
    fused = options.fused
    extra = [fused.tensor] if fused is not None and fused.reference is None else []
    sess = sessions.get(original, threads=options.edge_threads, extra_outputs=extra)
    # Named before F is added, so an F that is also an output is compared once, as an output.
    outputs = _graph_output_names(original) if extra else [o.name for o in sess.get_outputs()]
    ref = _run(sess, feeds)
    if fused is not None and fused.reference is not None:
        sess = sessions.get(fused.reference, extra_outputs=[fused.tensor])
        ref.setdefault(fused.tensor, _run(sess, feeds)[fused.tensor])
    return outputs, ref


def _run_split(
    device: ModelLike,
    edge: ModelLike,
    feeds: Mapping[str, np.ndarray],
    options: VerifyOptions,
    sessions: SessionCache,
) -> dict[str, np.ndarray]:
    """edge(device(feeds)): the edge's outputs by name."""
    sent = _run(sessions.get(device, threads=options.device_threads), feeds)
    check_overflow(sent, options.cast_sends, options.input_index)
    sess = sessions.get(edge, threads=options.edge_threads)
    missing = [i.name for i in sess.get_inputs() if i.name not in sent]
    if missing:
        raise InternalError(
            f"edge.onnx input(s) {', '.join(missing)} are not outputs of device.onnx"
        )
    got = _run(sess, sent)
    logger.debug("verify: ran original, device (%d tensors sent) and edge", len(sent))
    return got


def _compare_outputs(
    names: Sequence[str],
    got: Mapping[str, np.ndarray],
    ref: Mapping[str, np.ndarray],
    options: VerifyOptions,
) -> list[TensorComparison]:
    """One comparison per original output the edge produced (a missing one fails later)."""
    return [
        compare(name, got[name], ref[name], rtol=options.rtol, atol=options.atol)
        for name in names
        if name in got
    ]


def _compare_fused(
    fused: FusedCheck,
    feeds: Mapping[str, np.ndarray],
    reference: np.ndarray,
    options: VerifyOptions,
    sessions: SessionCache,
) -> TensorComparison:
    """F of the tiled model on `feeds` against F of the original."""
    sess = sessions.get(fused.tiled, extra_outputs=[fused.tensor])
    value = _run(sess, feeds)[fused.tensor]
    rtol, atol = fused.tolerance or (options.rtol, options.atol)
    return compare(fused.tensor, value, reference, rtol=rtol, atol=atol)


def _log(result: VerifyResult) -> None:
    for c in result.compared:
        logger.info(
            "verify %s: max abs %.3g, max rel %.3g: %s",
            c.name,
            c.max_abs_err,
            c.max_rel_err,
            "ok" if c.passed else "MISMATCH",
        )


def _graph_output_names(model: ModelLike) -> list[str]:
    return [o.name for o in load_structure(model).graph.output]
