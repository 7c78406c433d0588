"""FrameTable: paths in run order, once each; frames keyed by client and id; idle ones expire."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from flcompile.deploy.protocol import EdgeRequestError
from flcompile.serve.frames import FrameTable

ORDER = [2, 0, 1]  # a run order that is not the grid order


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _complete(table: FrameTable, client: str, frame: int) -> list:
    for path in ORDER:
        state = table.arrive(client, frame, path)
        table.store(state, path, {f"t{path}": np.full(1, path)}, (path, 0.0, 0.0, 0.0))
    tiles, rows = table.wait_complete(state)
    table.finish(state)
    return [rows, tiles]


def test_a_frame_in_order_completes_and_is_dropped() -> None:
    table = FrameTable(ORDER, timeout_s=5)
    rows, tiles = _complete(table, "a", 0)
    assert [r[0] for r in rows] == ORDER  # rows in run order
    assert sorted(tiles) == [0, 1, 2]
    stats = table.stats()
    assert (stats.open, stats.done, stats.expired) == (0, 1, 0)


def test_clients_and_frames_do_not_mix() -> None:
    table = FrameTable(ORDER, timeout_s=5)
    a = table.arrive("a", 7, 2)
    b = table.arrive("b", 7, 2)  # same frame id, another client: another frame
    c = table.arrive("a", 8, 2)
    assert len({id(a), id(b), id(c)}) == 3
    assert table.stats().open == 3


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ([2, 9], "unknown path 9"),
        ([2, 2], "duplicate path 2"),
        ([2, 0, 0], "duplicate path 0"),
        ([2, 1], "path 1 of frame 0 of client 'a' arrived before path 0"),
        ([0], "unknown frame 0 of client 'a'"),
    ],
)
def test_refusals_name_the_problem(sent: list[int], message: str) -> None:
    table = FrameTable(ORDER, timeout_s=5)
    for path in sent[:-1]:
        table.arrive("a", 0, path)
    with pytest.raises(EdgeRequestError, match=message):
        table.arrive("a", 0, sent[-1])


def test_a_refused_path_leaves_the_frame_usable() -> None:
    table = FrameTable(ORDER, timeout_s=5)
    table.arrive("a", 0, 2)
    with pytest.raises(EdgeRequestError):
        table.arrive("a", 0, 1)  # out of order
    table.arrive("a", 0, 0)
    table.arrive("a", 0, 1)
    assert table.stats().open == 1


def test_idle_frames_expire_and_a_waiting_fuse_is_told() -> None:
    clock = Clock()
    table = FrameTable(ORDER, timeout_s=2, clock=clock)
    state = table.arrive("dead", 0, 2)
    table.arrive("alive", 0, 2)
    clock.now += 1.5
    table.arrive("alive", 0, 0)  # activity keeps a frame alive
    clock.now += 1.0
    assert table.expire() == 1
    stats = table.stats()
    assert (stats.open, stats.expired) == (1, 1)
    assert state.failed is not None and "expired" in state.failed
    with pytest.raises(EdgeRequestError, match="unknown frame 0 of client 'dead'"):
        table.arrive("dead", 0, 0)
    with pytest.raises(EdgeRequestError, match="expired"):
        table.wait_complete(state)


def test_with_several_instances_a_path_waits_for_the_one_before_it() -> None:
    # Two requests sent back to back may reach two instances' handlers in either order.
    table = FrameTable(ORDER, timeout_s=5, order_wait_s=5.0)
    table.arrive("a", 0, 2)
    got = []
    late = threading.Thread(target=lambda: got.append(table.arrive("a", 0, 1)))
    late.start()
    late.join(0.2)
    assert late.is_alive()  # path 1 waits: path 0 comes first in the run order
    table.arrive("a", 0, 0)
    late.join(5)
    assert got and got[0].received == ORDER


def test_without_the_wait_an_early_path_is_refused_at_once() -> None:
    table = FrameTable(ORDER, timeout_s=5, order_wait_s=0.05)
    table.arrive("a", 0, 2)
    with pytest.raises(EdgeRequestError, match="arrived before path 0"):
        table.arrive("a", 0, 1)
