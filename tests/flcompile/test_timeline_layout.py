"""Tests for flcompile.timeline_layout: lanes, bar rectangles and labels, before any drawing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from flcompile.costs.table import CostTable
from flcompile.errors import BadInputError
from flcompile.schedule import PathTimes, Schedule, Timeline
from flcompile.simulate import simulate
from flcompile.solvers.random_tables import random_table
from flcompile.timeline_layout import (
    LABEL_PAD_PT,
    NFL_STYLE,
    ROWS,
    assign_lanes,
    layout_timelines,
    path_colors,
    text_width_pt,
)

NFL = [
    ("device", 0.0, 1e-3, "local"),
    ("link", 1e-3, 4e-3, "send"),
    ("edge", 4e-3, 9e-3, "rest"),
]


def _max_concurrent(intervals) -> int:
    """The most intervals running at one instant (a sweep over the start points)."""
    return max((sum(s <= t < e for s, e in intervals) for t, _ in intervals), default=0)


def _fan_out_timeline(concurrency: int, num_paths: int = 4):
    # Every path sends for 1 s, then needs 3 s of edge. Unlimited edge:
    #   path 0: link 0-1, edge 1-4
    #   path 1: link 1-2, edge 2-5
    #   path 2: link 2-3, edge 3-6   -> three paths on the edge during 3-4
    #   path 3: link 3-4, edge 4-7
    # A serial edge queues them instead: edges 1-4, 4-7, 7-10, 10-13.
    zeros = np.zeros((num_paths, 2))
    link = np.tile([1.0, 1.0], (num_paths, 1))
    edge = np.tile([3.0, 0.0], (num_paths, 1))
    table = CostTable(zeros, link, edge, post_fuse_s=2.0, edge_concurrency=concurrency)
    schedule = Schedule(order=tuple(range(num_paths)), cuts=(0,) * num_paths)
    return simulate(table, schedule), table.post_fuse_s


def _random_timelines():
    """Simulated timelines of random tables: serial, 2 at once and unlimited edges."""
    rng = np.random.default_rng(7)
    for concurrency, num_paths, _ in itertools.product((1, 2, 0), (1, 4, 9, 30), range(3)):
        table = random_table(rng, num_paths, 4, concurrency, zero_fraction=0.2)
        order = tuple(int(p) for p in rng.permutation(num_paths))
        cuts = tuple(int(c) for c in rng.integers(0, 4, num_paths))
        yield simulate(table, Schedule(order, cuts)), table.post_fuse_s, concurrency


def _rect(bar):
    return bar.x0, bar.x1, bar.y0, bar.y1


def _disjoint(a, b) -> bool:
    """Rectangles (x0, x1, y0, y1) share no interior point."""
    return a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]


def test_assign_lanes_is_an_optimal_partition():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 25))
        starts = rng.integers(0, 20, n)  # whole numbers make ties and touching ends
        ends = starts + rng.integers(1, 6, n)
        intervals = [(float(s), float(e)) for s, e in zip(starts, ends, strict=True)]
        lanes = assign_lanes(intervals)
        assert len(lanes) == n
        for i, j in itertools.combinations(range(n), 2):
            if lanes[i] == lanes[j]:
                (a0, a1), (b0, b1) = intervals[i], intervals[j]
                assert a1 <= b0 or b1 <= a0, (intervals[i], intervals[j])
        assert max(lanes) + 1 == _max_concurrent(intervals)


def test_assign_lanes_back_to_back_share_one_lane():
    assert assign_lanes([(2.0, 3.0), (0.0, 1.0), (1.0, 2.0)]) == (0, 0, 0)
    assert assign_lanes([(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]) == (0, 1, 0)
    assert assign_lanes([]) == ()


def test_serial_edge_uses_one_lane_per_row():
    timeline, post = _fan_out_timeline(concurrency=1)
    layout = layout_timelines(timeline, NFL, post_fuse_s=post)
    for panel in layout.panels:
        assert dict(panel.lanes) == dict.fromkeys(ROWS, 1)
    assert "at once" not in layout.panels[0].heading


@pytest.mark.parametrize("concurrency", [0, 2])
def test_concurrent_edge_gets_one_lane_per_path_running_at_once(concurrency):
    timeline, post = _fan_out_timeline(concurrency)
    layout = layout_timelines(timeline, None, post_fuse_s=post)
    plan = layout.panels[0]
    expected = 3 if concurrency == 0 else 2
    assert plan.lanes["edge"] == expected
    assert plan.lanes["device"] == plan.lanes["link"] == 1
    assert f"up to {expected} paths at once" in plan.heading
    edge = {b.segment.path: b for b in plan.bars if b.segment.row == "edge"}
    # The fuse bar runs after every path, so it spans the whole edge row.
    assert edge[None].y0 == min(b.y0 for b in edge.values())
    assert edge[None].y1 == max(b.y1 for b in edge.values())
    if concurrency == 0:
        assert [edge[p].lane for p in range(4)] == [0, 1, 2, 0]


def test_lanes_match_the_most_paths_running_at_once_on_random_timelines():
    for timeline, post, concurrency in _random_timelines():
        panel = layout_timelines(timeline, None, post_fuse_s=post).panels[0]
        for row in ROWS:
            intervals = [
                (getattr(pt, f"{row}_start"), getattr(pt, f"{row}_end"))
                for pt in timeline.paths
                if getattr(pt, f"{row}_end") > getattr(pt, f"{row}_start")
            ]
            assert panel.lanes[row] == max(1, _max_concurrent(intervals)), (row, concurrency)
        if concurrency:
            assert panel.lanes["edge"] <= concurrency


def test_bars_never_overlap_and_stay_in_their_row():
    for timeline, post, _ in _random_timelines():
        for panel in layout_timelines(timeline, NFL, post_fuse_s=post).panels:
            for a, b in itertools.combinations(panel.bars, 2):
                assert _disjoint(_rect(a), _rect(b)), (a, b)
            for bar in panel.bars:
                top, bottom = panel.rows[bar.segment.row]
                assert top < bar.y0 < bar.y1 < bottom
                assert 0 <= bar.lane < panel.lanes[bar.segment.row]


def test_bar_x_extents_are_the_timeline_times():
    for timeline, post, _ in _random_timelines():
        plan = layout_timelines(timeline, None, post_fuse_s=post).panels[0]
        got = {(b.segment.path, b.segment.row): (b.x0, b.x1) for b in plan.bars}
        want = {}
        for pt, row in itertools.product(timeline.paths, ROWS):
            start, end = getattr(pt, f"{row}_start"), getattr(pt, f"{row}_end")
            if end > start:
                want[pt.path, row] = (start * 1e3, end * 1e3)
        if post > 0:
            fuse_ms = timeline.fuse_start * 1e3
            want[None, "edge"] = (fuse_ms, fuse_ms + post * 1e3)
        assert len(plan.bars) == len(want)
        assert got == pytest.approx(want, rel=1e-12)


def test_nfl_bars_are_the_segments_in_their_own_colours():
    timeline, post = _fan_out_timeline(concurrency=0)
    plan, nfl = layout_timelines(timeline, NFL, post_fuse_s=post).panels
    assert [(b.segment.row, b.x0, b.x1, b.segment.label) for b in nfl.bars] == [
        (row, start * 1e3, end * 1e3, text) for row, start, end, text in NFL
    ]
    nfl_fills = {(b.segment.color, b.segment.hatch) for b in nfl.bars}
    assert nfl_fills == set(NFL_STYLE.values())
    assert all(b.segment.hatch is None for b in plan.bars)
    assert not {b.segment.color for b in nfl.bars} & {b.segment.color for b in plan.bars}
    assert len({color for color, _hatch in NFL_STYLE.values()}) == 3
    plan_legend = {e.color for e in plan.legend}
    assert {e.color for e in nfl.legend} == {color for color, _h in NFL_STYLE.values()}
    assert not plan_legend & {e.color for e in nfl.legend}


@pytest.mark.parametrize("num_paths", [1, 2, 3, 9, 10, 11, 16, 20, 21, 64])
def test_nfl_colours_are_never_path_colours(num_paths):
    palette = set(path_colors(range(num_paths)).values())
    assert len(palette) == num_paths
    assert not palette & {color for color, _hatch in NFL_STYLE.values()}


def test_labels_sit_inside_their_own_bar_and_fit():
    labelled = 0
    for timeline, post, _ in _random_timelines():
        layout = layout_timelines(timeline, NFL, post_fuse_s=post)
        for panel in layout.panels:
            for bar in panel.bars:
                if bar.label_size is None:
                    continue
                labelled += 1
                x0, x1, y0, y1 = bar.label_box
                assert bar.x0 <= x0 < x1 <= bar.x1 and bar.y0 <= y0 < y1 <= bar.y1
                width_ms = text_width_pt(bar.segment.label, bar.label_size) / layout.pt_per_ms
                assert width_ms < x1 - x0
                for other in panel.bars:
                    if other is not bar:
                        assert _disjoint(bar.label_box, _rect(other))
    assert labelled > 100


def test_each_path_is_labelled_with_its_own_name_on_its_own_lane():
    timeline, post = _fan_out_timeline(concurrency=0)
    plan = layout_timelines(timeline, None, post_fuse_s=post, labels={2: "two"}).panels[0]
    edge = {b.segment.path: b for b in plan.bars if b.segment.row == "edge"}
    assert {p: b.segment.label for p, b in edge.items()} == {
        0: "p0",
        1: "p1",
        2: "two",
        3: "p3",
        None: "fuse + rest",
    }
    assert all(b.label_size is not None for b in edge.values())
    assert [e.label for e in plan.legend] == ["p0", "p1", "two", "p3", "fuse + rest"]


def test_labels_that_do_not_fit_are_shrunk_or_dropped():
    # Three link bars on a 100 ms axis: one wide, one narrower than "p1" at 7 pt but wider
    # than at 5 pt, one narrower than "p2" at 5 pt.
    def timeline(widths_ms):
        paths, t = [], 0.0
        for p, w in enumerate(widths_ms):
            paths.append(PathTimes(p, t, t, t, t + w * 1e-3, t + w * 1e-3, t + w * 1e-3))
            t += 0.03
        return Timeline(paths=tuple(paths), fuse_start=t, finish=0.1)

    pt_per_ms = layout_timelines(timeline([1, 1, 1]), None, post_fuse_s=0.0).pt_per_ms
    pad = 2 * LABEL_PAD_PT
    full = (text_width_pt("p0", 7.0) + pad) / pt_per_ms
    small = (text_width_pt("p1", 7.0) + text_width_pt("p1", 5.0) + 2 * pad) / 2 / pt_per_ms
    tiny = 0.9 * (text_width_pt("p2", 5.0) + pad) / pt_per_ms
    layout = layout_timelines(timeline([full * 1.01, small, tiny]), None, post_fuse_s=0.0)
    assert layout.pt_per_ms == pt_per_ms
    sizes = [b.label_size for b in layout.panels[0].bars]
    assert sizes[0] == 7.0
    assert sizes[1] is not None and 5.0 <= sizes[1] < 7.0
    assert sizes[2] is None and layout.panels[0].bars[2].label_box is None


def test_many_paths_have_no_path_legend():
    timeline, post = _fan_out_timeline(concurrency=1, num_paths=64)
    plan = layout_timelines(timeline, None, post_fuse_s=post).panels[0]
    assert [e.label for e in plan.legend] == ["fuse + rest"]
    assert len({b.segment.color for b in plan.bars if b.segment.path is not None}) == 64


def test_unknown_baseline_lane_is_refused():
    timeline, post = _fan_out_timeline(concurrency=1)
    with pytest.raises(BadInputError, match="'cpu'"):
        layout_timelines(timeline, [("cpu", 0.0, 1.0, "x")], post_fuse_s=post)
