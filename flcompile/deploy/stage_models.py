"""The stage models of a compiled plan: OUT's files, or cut out of device.onnx and edge.onnx.

Where OUT has no `stages/` (compiled without `--emit-stages`), each path's device stage is
the part of device.onnx that computes its sends, its edge stage the part of edge.onnx
from its sends to its tile of F, and the fuse the part of edge.onnx from the tiles to the
outputs (docs/design.md §3). They are built in memory: OUT is never written to.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort

from flcompile.deploy.plan_index import PlanIndex
from flcompile.emit import to_model
from flcompile.errors import BadInputError
from flcompile.passes.split import extract
from flcompile.verify import ModelLike, open_session

logger = logging.getLogger(__name__)


def _load(index: PlanIndex, name: str) -> onnx.ModelProto:
    path = index.out / name
    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf, OS and onnx errors all mean the same here
        raise BadInputError(
            f"{path}: cannot read the model ({e})", hint="recompile the model"
        ) from e


def _cut(model: onnx.ModelProto, inputs: list[str], outputs: list[str], label: str):
    return to_model(extract(gs.import_onnx(model), inputs, outputs, label), model)


def device_models(index: PlanIndex) -> list[ModelLike | None]:
    """Each path's device stage, in run order: a file path, or a model cut from device.onnx.

    Args:
        index: the plan.

    Returns:
        One model per entry of `index.paths`; None for a path that sends nothing.

    Raises:
        BadInputError: a model file cannot be read.
    """
    sending = [s for s in index.paths if s.sends]
    if all(s.device is not None for s in sending):
        return [str(index.out / s.device) if s.sends else None for s in index.paths]
    logger.info("%s has no stages/: cutting the device stages out of device.onnx", index.out)
    device = _load(index, "device.onnx")
    inputs = list(index.inputs)
    return [
        _cut(device, inputs, list(s.sends), f"device_p{s.path}") if s.sends else None
        for s in index.paths
    ]


def edge_models(index: PlanIndex) -> tuple[list[ModelLike | None], ModelLike | None]:
    """Each path's edge stage in run order (None: no edge stage), and the fuse stage.

    Args:
        index: the plan.

    Returns:
        (one model or None per entry of `index.paths`, the fuse model or None without
        fused layers).

    Raises:
        BadInputError: a model file cannot be read.
    """
    if index.fuse is not None or not index.fused:
        paths = [str(index.out / s.edge) if s.edge else None for s in index.paths]
        return paths, str(index.out / index.fuse) if index.fuse else None
    logger.info("%s has no stages/: cutting the edge stages out of edge.onnx", index.out)
    edge = _load(index, "edge.onnx")
    stages: list[ModelLike | None] = [
        _cut(edge, [*s.sends, *s.held], [*s.result, *s.keeps], f"edge_p{s.path}")
        if s.has_edge
        else None
        for s in index.paths
    ]
    return stages, _cut(edge, list(index.fuse_inputs), list(index.outputs), "edge_fuse")


@contextlib.contextmanager
def open_sessions(
    models: list[ModelLike | None], threads: int | None
) -> Iterator[list[ort.InferenceSession | None]]:
    """onnxruntime sessions on `models` (None stays None), open while the block runs.

    Args:
        models: models or files.
        threads: intra-op threads of each session (None: onnxruntime's default).

    Yields:
        The sessions, in the order of `models`.
    """
    with contextlib.ExitStack() as stack:
        yield [
            None if m is None else stack.enter_context(open_session(m, threads=threads))
            for m in models
        ]
