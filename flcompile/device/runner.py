"""Run a plan's device stages path by path, streaming each path's tensors as soon as it ends.

The main thread runs the device stages in run order in onnxruntime. Each path's tensors go
to a sender thread the moment its stage ends; the sender is the link: it paces each
message (`pacer`), first come first served, and hands it to gRPC without waiting for the
answer, so the device computes path k+1 while path k is on the link and the edge runs
path k - 1, as in the simulator (docs/design.md §4, §11).

A frame's events are recorded in seconds from the frame's start on this machine's clock
(the edge's, converted from seconds since the epoch, assume a shared clock):

- `device` (path, start, end): its device stage;
- `send` (path, start, end, bytes): on the link, from when the sender took it to when the
  pacer released it; `handed` is when gRPC had it;
- `answer` (path, at): when its answer arrived;
- `edge` (path, received, start, end): from the server: when its handler got the request
  (after any wait in Triton's queue) and its edge stage;
- `fuse` (start, end): the fuse and the rest of the model, on the edge.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from flcompile.deploy import protocol
from flcompile.deploy.plan_index import PathStage, PlanIndex
from flcompile.deploy.stage_models import open_sessions
from flcompile.device.client import Answer, EdgeClient
from flcompile.device.pacer import Pacer
from flcompile.passes.split import single_cut_name
from flcompile.verify import ModelLike

#: How long closing a runner waits for its sender to finish the message it is on.
STOP_WAIT_S = 5.0


@dataclass(frozen=True, eq=False)
class FrameRecord:
    """One frame's outcome.

    Attributes:
        frame: the frame id.
        ok: whether every path was answered without error.
        error: the first error, one line (None when ok).
        latency_s: from the first device stage's start to the last answer.
        start_epoch_s: the frame's start, in seconds since the epoch.
        events: the frame's events (module docstring), in seconds from its start.
        outputs: the model's outputs (empty when the frame failed).
    """

    frame: int
    ok: bool
    error: str | None
    latency_s: float
    start_epoch_s: float
    events: tuple[dict, ...]
    outputs: dict[str, np.ndarray] = field(repr=False)


@dataclass(eq=False)
class _Send:
    """One path's message, filled in by the main thread, the sender and gRPC's callback."""

    frame: int
    stage: PathStage
    tensors: dict[str, np.ndarray]
    last: bool
    device: tuple[float, float]
    link: tuple[float, float] = (0.0, 0.0)
    handed: float = 0.0
    answered: float = 0.0
    answer: Answer | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def nbytes(self) -> int:
        return sum(int(v.nbytes) for v in self.tensors.values())


class DeviceRunner:
    """The device side of one plan, connected to an edge server.

    Args:
        index: the plan.
        models: its device stages in run order (`stage_models.device_models`; None for a
            path that sends nothing).
        client: the connection to the server.
        pacer: the link's pacing (`Unpaced` where the link itself is slow).
        client_id: this device's name in the requests (unique per run).
        threads: onnxruntime intra-op threads of the device stages.
        timeout_s: how long to wait for a frame's answers.
        stack: owns the sessions and the sender thread.
    """

    def __init__(
        self,
        index: PlanIndex,
        models: list[ModelLike | None],
        client: EdgeClient,
        pacer: Pacer,
        *,
        client_id: str,
        threads: int,
        timeout_s: float,
        stack: contextlib.ExitStack,
    ) -> None:
        self.index = index
        self.client = client
        self.pacer = pacer
        self.client_id = client_id
        self._timeout_s = timeout_s
        self._sessions = stack.enter_context(open_sessions(list(models), threads))
        self._outputs = [*index.outputs, protocol.TIMINGS]
        self._queue: queue.Queue[_Send | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, name="sender", daemon=True)
        self._sender.start()
        stack.callback(self._stop_sender)

    def run_frame(self, frame: int, feeds: Mapping[str, np.ndarray]) -> FrameRecord:
        """Run one frame: every device stage in run order, each path sent as it ends.

        Args:
            frame: the frame id (unique within this runner).
            feeds: the model's inputs.

        Returns:
            The frame's record; a server error fails the frame, it does not raise.
        """
        if self.index.local:
            return self._run_on_device(frame, feeds)
        sends: list[_Send] = []
        # A path that sends nothing (edge-side reuse) has no device stage and no message.
        staged = [(st, se) for st, se in zip(self.index.paths, self._sessions, strict=True) if se]
        start = time.time()
        for position, (stage, session) in enumerate(staged):
            begin = time.time()
            values = session.run(list(stage.sends), dict(feeds))
            item = _Send(
                frame,
                stage,
                dict(zip(stage.sends, values, strict=True)),
                position == len(staged) - 1,
                (begin, time.time()),
            )
            self._queue.put(item)
            sends.append(item)
        deadline = time.monotonic() + self._timeout_s
        for item in sends:
            if not item.done.wait(max(0.0, deadline - time.monotonic())):
                _answered(item, Answer(None, {}, f"no answer within {self._timeout_s:g} s"))
        return _record(frame, start, sends)

    def _run_on_device(self, frame: int, feeds: Mapping[str, np.ndarray]) -> FrameRecord:
        """A local-only plan: the device computes the outputs, and nothing is sent or
        answered, as the plan prices it (docs/design.md §11)."""
        ((stage, session),) = zip(self.index.paths, self._sessions, strict=True)
        start = time.time()
        values = session.run(list(stage.sends), dict(feeds))
        end = time.time() - start
        restored = {single_cut_name(name): name for name in self.index.outputs}
        return FrameRecord(
            frame=frame,
            ok=True,
            error=None,
            latency_s=end,
            start_epoch_s=start,
            events=({"kind": "device", "path": stage.path, "start": 0.0, "end": end},),
            outputs={restored[s]: v for s, v in zip(stage.sends, values, strict=True)},
        )

    def _send_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            link_start = time.time()
            self.pacer.transmit(item.nbytes)
            item.link = (link_start, time.time())
            try:
                self.client.send(
                    client=self.client_id,
                    frame=item.frame,
                    path=item.stage.path,
                    tensors=item.tensors,
                    outputs=self._outputs if item.last else [protocol.TIMINGS],
                    callback=lambda answer, item=item: _answered(item, answer),
                )
            except ConnectionError as e:  # the server went away: the frame fails, the run goes on
                _answered(item, Answer(None, {}, str(e)))
            item.handed = time.time()

    def _stop_sender(self) -> None:
        self._queue.put(None)
        self._sender.join(timeout=STOP_WAIT_S)  # a daemon: a long paced send does not hold exit


def _answered(item: _Send, answer: Answer) -> None:
    item.answered = time.time()
    item.answer = answer
    item.done.set()


def _record(frame: int, start: float, sends: list[_Send]) -> FrameRecord:
    """The frame's record from its messages (times made relative to `start`)."""

    def rel(t: float) -> float:
        return t - start

    events: list[dict] = []
    for item in sends:
        p = item.stage.path
        events.append(
            {"kind": "device", "path": p, "start": rel(item.device[0]), "end": rel(item.device[1])}
        )
        events.append(
            {
                "kind": "send",
                "path": p,
                "start": rel(item.link[0]),
                "end": rel(item.link[1]),
                "handed": rel(item.handed),
                "bytes": item.nbytes,
            }
        )
        events.append({"kind": "answer", "path": p, "at": rel(item.answered)})
    answers = [item.answer for item in sends]
    errors = [a.error if a else "no answer" for a in answers if a is None or a.error]
    last = answers[-1]
    rows = last.timings if last is not None and last.timings is not None else None
    if rows is None or errors:  # take what each path's own answer said
        rows = [a.timings for a in answers if a and a.timings is not None]
        rows = np.concatenate(rows) if rows else np.zeros((0, 4))
    for path, received, begin, end in np.asarray(rows, dtype=np.float64):
        if int(path) == protocol.FUSE_ROW:
            events.append({"kind": "fuse", "path": None, "start": rel(begin), "end": rel(end)})
        else:
            events.append(
                {
                    "kind": "edge",
                    "path": int(path),
                    "received": rel(received),
                    "start": rel(begin),
                    "end": rel(end),
                }
            )
    ok = not errors
    return FrameRecord(
        frame=frame,
        ok=ok,
        error=None if ok else errors[0],
        latency_s=max(item.answered for item in sends) - start,
        start_epoch_s=start,
        events=tuple(events),
        outputs=dict(last.outputs) if ok and last is not None else {},
    )
