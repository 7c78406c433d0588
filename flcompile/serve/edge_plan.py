"""One compiled plan's edge: check a path's request, run its edge stage, and fuse a frame.

Each Triton instance gets its own onnxruntime sessions, so K instances are K independent
executions with `threads` intra-op threads each. Path requests are handled as in
docs/design.md §11: the path's edge stage runs as soon as its request is handled; the
request of the frame's last path waits for every tile, runs the fuse and the rest of the
model, and is answered with the model's outputs. Under edge-side reuse a path may send
nothing (earlier paths sent its whole region): no request carries it, and its edge stage
runs right after the stage of the path before it, in the same request. Under intermediate
reuse a path's edge stage also yields what later paths read of its results (`keeps`), and
waits for what it reads of earlier paths' (`held`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from flcompile.deploy import protocol
from flcompile.deploy.plan_index import PathStage, PlanIndex
from flcompile.deploy.protocol import EdgeRequestError
from flcompile.deploy.stage_models import edge_models, open_sessions
from flcompile.serve.frames import Frame, FrameTable, Row

logger = logging.getLogger(__name__)

#: With several instances, how long a path waits for the paths before it (see frames.py).
ORDER_WAIT_S = 1.0


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's name, shape (-1 for a dynamic dim) and numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def _ort_dtype(type_name: str) -> np.dtype:
    """numpy's dtype of an onnxruntime type name such as 'tensor(float)'."""
    elem = type_name.removeprefix("tensor(").removesuffix(")").upper()
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(onnx.TensorProto.DataType.Value(elem)))


def _spec(arg: ort.NodeArg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, shape, _ort_dtype(arg.type))


class EdgePlan:
    """The edge of one plan, for `instances` concurrent executions.

    Args:
        index: the plan.
        instances: how many Triton instances run it at once.
        threads: onnxruntime intra-op threads per execution (None: onnxruntime's default).
        frame_timeout_s: a frame idle this long is dropped.
        stack: owns the sessions; closing it closes them.
    """

    def __init__(
        self,
        index: PlanIndex,
        *,
        instances: int,
        threads: int | None,
        frame_timeout_s: float,
        stack: contextlib.ExitStack,
    ) -> None:
        self.index = index
        stages, fuse = edge_models(index)
        self._sessions = [
            stack.enter_context(open_sessions([*stages, fuse], threads)) for _ in range(instances)
        ]
        order_wait = 0.0 if instances == 1 else min(ORDER_WAIT_S, frame_timeout_s)
        self.frames = FrameTable(
            [s.path for s in index.paths],
            silent={s.path for s in index.paths if not s.sends},
            timeout_s=frame_timeout_s,
            order_wait_s=order_wait,
        )
        first = self._sessions[0]
        fuse_session = first[-1]
        fuse_inputs = {a.name: _spec(a) for a in fuse_session.get_inputs()} if fuse_session else {}
        self.sends: dict[int, tuple[TensorSpec, ...]] = {}
        for stage, session in zip(index.paths, first, strict=False):
            if session is not None:
                specs = {a.name: _spec(a) for a in session.get_inputs()}
            else:
                specs = fuse_inputs
            self.sends[stage.path] = tuple(specs[name] for name in stage.sends)
        last = fuse_session or first[len(index.paths) - 1]
        self.outputs = tuple(_spec(a) for a in last.get_outputs())
        # Under edge-side reuse, the sends that later paths read too.
        self.held = {name for stage in index.paths for name in stage.held}
        self._failed = 0
        self._lock = threading.Lock()

    @property
    def requests_failed(self) -> int:
        """How many requests were refused or failed."""
        with self._lock:
            return self._failed

    def handle(
        self, instance: int, data: Mapping[str, np.ndarray], parameters: Mapping | None
    ) -> dict[str, np.ndarray]:
        """Handle one path's request.

        Args:
            instance: the Triton instance handling it (whose sessions run it).
            data: the request's tensors by name.
            parameters: the request's parameters (client, frame, path).

        Returns:
            `fl_timings`, and for a frame's last path the model's outputs.

        Raises:
            EdgeRequestError: the request is refused or its frame failed; the message
                says why, in one line.
        """
        received = time.time()
        try:
            return self._handle(instance, data, parameters or {}, received)
        except EdgeRequestError as e:
            with self._lock:
                self._failed += 1
            logger.warning("%s: refused: %s", self.index.name, e)
            raise

    def _handle(
        self, instance: int, data: Mapping[str, np.ndarray], parameters: Mapping, received: float
    ) -> dict[str, np.ndarray]:
        client, frame, path = _frame_key(parameters)
        position, stage = next(
            ((i, s) for i, s in enumerate(self.index.paths) if s.path == path), (None, None)
        )
        if stage is None:
            known = sorted(s.path for s in self.index.paths)
            raise EdgeRequestError(f"unknown path {path}: plan {self.index.name} has paths {known}")
        self._check_tensors(stage, data)
        keep = {n: np.array(data[n], copy=True) for n in stage.sends if n in self.held}
        state = self.frames.arrive(client, frame, path, keep)
        ran = [self._run_stage(instance, state, position, data, received)]
        for silent in range(position + 1, len(self.index.paths)):  # paths that send nothing
            if self.index.paths[silent].sends:
                break
            ran.append(self._run_stage(instance, state, silent, {}, received))
        if not self.frames.is_last(path):
            return {protocol.TIMINGS: protocol.timing_rows(ran)}
        return self._finish(instance, state)

    def _run_stage(
        self,
        instance: int,
        state: Frame,
        position: int,
        data: Mapping[str, np.ndarray],
        received: float,
    ) -> Row:
        """Run the edge stage of the path at `position`, store its tile, return its timing row."""
        stage = self.index.paths[position]
        session = self._sessions[instance][position]
        start = time.time()
        try:
            if session is None:  # the device ran the whole path and sent its tile
                result = {name: np.array(data[name], copy=True) for name in stage.sends}
            else:
                feed = {name: data[name] for name in stage.sends}
                feed.update(self.frames.wait_pieces(state, stage.held))
                start = time.time()  # after any wait for earlier stages' results
                names = [*stage.result, *stage.keeps]
                values = dict(zip(names, session.run(names, feed), strict=True))
                result = {name: values[name] for name in stage.result}
                self.frames.keep(state, {name: values[name] for name in stage.keeps})
        except Exception as e:
            self.frames.fail(state, f"the edge stage of path {stage.path} failed")
            raise EdgeRequestError(f"the edge stage of path {stage.path} failed: {e}") from e
        row = (float(stage.path), received, start, time.time())
        self.frames.store(state, stage.path, result, row)
        return row

    def _finish(self, instance: int, state) -> dict[str, np.ndarray]:
        tiles, rows = self.frames.wait_complete(state)
        ready = time.time()
        fuse = self._sessions[instance][-1]
        try:
            if fuse is None:
                outputs = tiles[self.index.paths[-1].path]
            else:
                feed = {name: value for tile in tiles.values() for name, value in tile.items()}
                names = list(self.index.outputs)
                outputs = dict(zip(names, fuse.run(names, feed), strict=True))
        except Exception as e:
            self.frames.fail(state, "the fuse failed")
            raise EdgeRequestError(f"{state.label}: the fuse failed: {e}") from e
        finally:
            self.frames.finish(state)
        if fuse is not None:
            rows.append((float(protocol.FUSE_ROW), ready, ready, time.time()))
        return {**outputs, protocol.TIMINGS: protocol.timing_rows(rows)}

    def _check_tensors(self, stage: PathStage, data: Mapping[str, np.ndarray]) -> None:
        specs = self.sends[stage.path]
        if set(data) != {s.name for s in specs}:
            raise EdgeRequestError(
                f"path {stage.path} sends {[s.name for s in specs]}, but the request "
                f"holds {sorted(data)}"
            )
        for spec in specs:
            value = data[spec.name]
            shape_ok = len(value.shape) == len(spec.shape) and all(
                want in (-1, got) for want, got in zip(spec.shape, value.shape, strict=True)
            )
            if value.dtype != spec.dtype or not shape_ok:
                raise EdgeRequestError(
                    f"tensor {spec.name} of path {stage.path} must be {spec.dtype} "
                    f"{list(spec.shape)}, got {value.dtype} {list(value.shape)}"
                )


def _frame_key(parameters: Mapping) -> tuple[str, int, int]:
    """(client, frame, path) from the request parameters, each checked."""
    client = parameters.get(protocol.CLIENT)
    frame = parameters.get(protocol.FRAME)
    path = parameters.get(protocol.PATH)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (frame, path))
    if not isinstance(client, str) or not client or not ints:
        raise EdgeRequestError(
            f"a request needs the parameters {protocol.CLIENT} (a string), {protocol.FRAME} "
            f"and {protocol.PATH} (integers); got {dict(parameters)}"
        )
    return client, int(frame), int(path)
