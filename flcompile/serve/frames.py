"""Per-frame state of the edge: which paths of a frame arrived, their tiles, and expiry.

A frame is keyed by (client, frame id). Its paths must arrive in the plan's run order,
each once (a path that sends nothing, under edge-side reuse, never arrives: the edge runs
it after the path before it); the first creates the frame, and a frame not completed
within the timeout of its last activity is dropped, tiles and all, so a device that dies
mid-frame costs memory only until then. Where Triton runs several instances, two requests
sent back to back may reach the handlers in either order, so a path waits up to
`order_wait_s` for the paths before it before it is refused as out of order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from flcompile.deploy.protocol import EdgeRequestError

Row = tuple[float, float, float, float]


class Frame:
    """One frame in progress: the paths received so far, their tiles and timing rows."""

    def __init__(self, client: str, frame: int, now: float) -> None:
        self.client = client
        self.frame = frame
        self.received: list[int] = []
        self.tiles: dict[int, dict[str, np.ndarray]] = {}
        # What the paths sent (edge-side reuse) and computed (intermediate reuse) that later
        # paths read.
        self.pieces: dict[str, np.ndarray] = {}
        self.rows: dict[int, Row] = {}
        self.last_seen = now
        self.failed: str | None = None

    @property
    def label(self) -> str:
        """How messages name the frame."""
        return f"frame {self.frame} of client {self.client!r}"


@dataclass(frozen=True)
class FrameStats:
    """Counters of a FrameTable."""

    open: int
    done: int
    expired: int


class FrameTable:
    """The frames in progress of one plan, shared by every Triton instance serving it.

    Args:
        run_order: the plan's path indices in run order.
        silent: the paths that send nothing (they never arrive; the edge stores their tiles).
        timeout_s: a frame idle this long is dropped.
        order_wait_s: how long a path waits for the paths before it (0 with one instance,
            where requests are handled in arrival order).
        clock: the time source (seconds).
    """

    def __init__(
        self,
        run_order: Sequence[int],
        *,
        silent: Collection[int] = (),
        timeout_s: float,
        order_wait_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._run_order = list(run_order)
        self._order = [p for p in run_order if p not in silent]  # the order of arrival
        self._position = {p: i for i, p in enumerate(self._order)}
        self._timeout = timeout_s
        self._order_wait = order_wait_s
        self._clock = clock
        self._frames: dict[tuple[str, int], Frame] = {}
        self._cv = threading.Condition()
        self._done = 0
        self._expired = 0

    def arrive(
        self, client: str, frame: int, path: int, keep: Mapping[str, np.ndarray] | None = None
    ) -> Frame:
        """Register path `path` of a frame; the first path in run order creates the frame.

        Args:
            client: the device's name.
            frame: the frame id.
            path: the path's grid index.
            keep: tensors the path sent that later paths of the frame read (edge-side
                reuse); kept in `Frame.pieces` before any later path may arrive.

        Returns:
            The frame.

        Raises:
            EdgeRequestError: the path is not in the plan, was already received, arrives
                before a path that precedes it, or its frame is unknown (its first path
                never arrived, or it expired).
        """
        if path in self._run_order and path not in self._position:
            raise EdgeRequestError(
                f"path {path} sends nothing (earlier paths sent its whole region): the edge "
                "runs it after the path before it, and no request may carry it"
            )
        if path not in self._position:
            raise EdgeRequestError(
                f"unknown path {path}: the plan's paths are {sorted(self._run_order)}"
            )
        position = self._position[path]
        key = (client, frame)
        with self._cv:
            if position == 0:
                state = self._frames.get(key)
                if state is not None:
                    raise EdgeRequestError(f"duplicate path {path} for {state.label}")
                state = self._frames[key] = Frame(client, frame, self._clock())
                state.pieces.update(keep or {})
                state.received.append(path)
                self._cv.notify_all()
                return state
            self._cv.wait_for(
                lambda: len(getattr(self._frames.get(key), "received", ())) >= position,
                timeout=self._order_wait,
            )
            state = self._frames.get(key)
            if state is None:
                raise EdgeRequestError(
                    f"unknown frame {frame} of client {client!r}: its first path "
                    f"{self._order[0]} never arrived, or it expired after {self._timeout:g} s"
                )
            if path in state.received:
                raise EdgeRequestError(f"duplicate path {path} for {state.label}")
            if len(state.received) != position:
                expected = self._order[len(state.received)]
                raise EdgeRequestError(
                    f"path {path} of {state.label} arrived before path {expected}; "
                    f"paths must arrive in the plan's order {self._order}"
                )
            state.pieces.update(keep or {})
            state.received.append(path)
            state.last_seen = self._clock()
            self._cv.notify_all()
            return state

    def keep(self, state: Frame, pieces: Mapping[str, np.ndarray]) -> None:
        """Keep what a path's edge stage computed that later paths read (intermediate reuse)."""
        if not pieces:
            return
        with self._cv:
            state.pieces.update(pieces)
            self._cv.notify_all()

    def wait_pieces(self, state: Frame, names: Collection[str]) -> dict[str, np.ndarray]:
        """What earlier paths of the frame sent or computed that a path reads, once it is all
        there (with several instances an earlier path's stage may still be running).

        Raises:
            EdgeRequestError: the frame failed, or the pieces were not there within the
                timeout.
        """
        with self._cv:
            self._cv.wait_for(
                lambda: state.failed is not None or all(n in state.pieces for n in names),
                timeout=self._timeout,
            )
            missing = [n for n in names if n not in state.pieces]
            if state.failed is not None or missing:
                reason = state.failed or f"{missing[0]} was not there within {self._timeout:g} s"
                raise EdgeRequestError(f"{state.label} failed: {reason}")
            return {n: state.pieces[n] for n in names}

    def is_last(self, path: int) -> bool:
        """Whether `path` is the last of the run order to arrive."""
        return self._position.get(path) == len(self._order) - 1

    def store(self, state: Frame, path: int, tile: dict[str, np.ndarray], row: Row) -> None:
        """Keep what a path's edge stage yielded (its tile of F) and its timing row."""
        with self._cv:
            state.tiles[path] = tile
            state.rows[path] = row
            state.last_seen = self._clock()
            self._cv.notify_all()

    def wait_complete(self, state: Frame) -> tuple[dict[int, dict[str, np.ndarray]], list[Row]]:
        """Wait until every path of the frame has its tile (other instances may still run).

        Returns:
            (tile by path, timing rows in run order).

        Raises:
            EdgeRequestError: the frame failed or expired meanwhile.
        """
        with self._cv:
            self._cv.wait_for(
                lambda: state.failed is not None or len(state.tiles) == len(self._run_order),
                timeout=self._timeout,
            )
            if state.failed is not None or len(state.tiles) != len(self._run_order):
                reason = state.failed or f"its tiles were not ready within {self._timeout:g} s"
                raise EdgeRequestError(f"{state.label} failed: {reason}")
            return dict(state.tiles), [state.rows[p] for p in self._run_order]

    def finish(self, state: Frame) -> None:
        """Drop a completed frame."""
        with self._cv:
            if self._frames.pop((state.client, state.frame), None) is state:
                self._done += 1

    def fail(self, state: Frame, reason: str) -> None:
        """Drop a frame whose edge stage failed; a path waiting on it is told why."""
        with self._cv:
            state.failed = reason
            self._frames.pop((state.client, state.frame), None)
            self._cv.notify_all()

    def expire(self) -> int:
        """Drop every frame idle for longer than the timeout.

        Returns:
            How many were dropped.
        """
        with self._cv:
            limit = self._clock() - self._timeout
            stale = [k for k, s in self._frames.items() if s.last_seen < limit]
            for key in stale:
                state = self._frames.pop(key)
                state.failed = f"expired after {self._timeout:g} s without its remaining paths"
            self._expired += len(stale)
            if stale:
                self._cv.notify_all()
            return len(stale)

    def stats(self) -> FrameStats:
        """How many frames are open, were completed and expired."""
        with self._cv:
            return FrameStats(len(self._frames), self._done, self._expired)
