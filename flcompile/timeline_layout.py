"""Lay out simulated timelines as Gantt bars before anything is drawn: rows, lanes, labels.

A panel has three rows: device, link and edge. Bars that overlap in time within a row (an
edge that runs several paths at once) go on lanes of their own within that row, found by
interval partitioning; a serial row keeps one lane. A label is kept only where it fits
inside its own bar, at the largest of a few font sizes that fits. Everything here is plain
geometry (x in ms, y in row units from the top of a panel), so it is tested without drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from flcompile.errors import BadInputError
from flcompile.schedule import Timeline

Color = tuple[float, float, float, float]

ROWS = ("device", "link", "edge")
FIG_WIDTH_IN = 12.0
AXES_LEFT_IN = 0.8
AXES_RIGHT_IN = 2.0  # room for the legends
ROW_IN = 0.6  # inches per row unit
ROW_PT = ROW_IN * 72.0
X_MARGIN = 1.08  # the time axis runs 8 % past the last finish
LEGEND_MAX_PATHS = 16
LABEL_PAD_PT = 1.5
_ROW_PAD = 0.15  # row units left empty above and below a row's bars
_LANE_GAP = 0.12  # fraction of a lane left empty between two lanes
_MAX_ROW_UNITS = 6.0
_LABEL_SIZES = (7.0, 6.0, 5.0)

FUSE_COLOR: Color = to_rgba("0.35")
# The NFL baseline's phases: hatched neutral fills, so they never read as one of the paths.
NFL_STYLE: dict[str, tuple[Color, str]] = {
    "device": (to_rgba("#f4f1e8"), "///"),
    "link": (to_rgba("#dcd6c6"), "..."),
    "edge": (to_rgba("#b9b2a0"), "\\\\\\"),
}


@dataclass(frozen=True)
class Segment:
    """One bar to lay out: its row, its time interval in ms, its look and its label.

    Attributes:
        whole_row: span every lane of the row when the bar overlaps no other bar there.
    """

    row: str
    start_ms: float
    end_ms: float
    color: Color
    label: str
    path: int | None = None
    hatch: str | None = None
    whole_row: bool = False


@dataclass(frozen=True)
class Bar:
    """A laid-out bar: x in ms, y in row units from the panel's top, and its label if it fits.

    Attributes:
        label_size: the label's font size in points; None when no size fits the bar.
        label_box: (x0, x1, y0, y1) of the label's text box, in the bar's units.
    """

    segment: Segment
    lane: int
    x0: float
    x1: float
    y0: float
    y1: float
    label_size: float | None = None
    label_box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class LegendEntry:
    """One legend row: a label and the fill that it names."""

    label: str
    color: Color
    hatch: str | None = None


@dataclass(frozen=True)
class Panel:
    """One Gantt chart: its bars, the lanes and y extent of each row, and its legend."""

    heading: str
    bars: tuple[Bar, ...]
    lanes: Mapping[str, int]
    rows: Mapping[str, tuple[float, float]]
    height: float
    legend: tuple[LegendEntry, ...]
    finish_ms: float


@dataclass(frozen=True)
class TimelineLayout:
    """The FL plan's panel, then the baseline's if any, on one time axis of `x_max_ms`.

    Attributes:
        finish_label: the legend's name for the first panel's finish, marked on the others.
    """

    panels: tuple[Panel, ...]
    x_max_ms: float
    pt_per_ms: float
    finish_label: str = "FL plan finish"


def assign_lanes(intervals: Sequence[tuple[float, float]]) -> tuple[int, ...]:
    """Interval partitioning: the fewest lanes such that no two intervals in a lane overlap.

    Intervals are taken by start time and each goes to the lowest lane already free at its
    start. This is optimal: a new lane opens only when every lane holds an interval still
    running at that start, so the lane count equals the most intervals running at once.
    Touching intervals ([a, b] and [b, c]) do not overlap.

    Args:
        intervals: (start, end) pairs.

    Returns:
        The lane of each interval, in the input's order; lanes are numbered from 0.
    """
    lanes = [0] * len(intervals)
    lane_free: list[float] = []
    for i in sorted(range(len(intervals)), key=lambda i: intervals[i]):
        start, end = intervals[i]
        lane = next((k for k, free in enumerate(lane_free) if free <= start), len(lane_free))
        if lane == len(lane_free):
            lane_free.append(end)
        lane_free[lane] = end
        lanes[i] = lane
    return tuple(lanes)


def path_colors(paths: Sequence[int]) -> dict[int, Color]:
    """A distinct colour per path: tab10/tab20 for few paths, a cyclic map for many.

    Args:
        paths: the path indices (duplicates are ignored).

    Returns:
        The colour of each path.
    """
    ordered = sorted(set(paths))
    n = len(ordered)
    if n <= 20:
        cmap = colormaps["tab10" if n <= 10 else "tab20"]
        return {p: cmap(i) for i, p in enumerate(ordered)}
    cmap = colormaps["turbo"]
    return {p: cmap(0.05 + 0.9 * i / (n - 1)) for i, p in enumerate(ordered)}


@lru_cache(maxsize=4096)
def text_width_pt(text: str, size: float) -> float:
    """The advance width in points of `text` at font size `size`, in matplotlib's font."""
    width, _height, _descent = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=size), ismath=False
    )
    return float(width)


def _fit_label(
    text: str, rect: tuple[float, float, float, float], pt_per_ms: float
) -> tuple[float | None, tuple[float, float, float, float] | None]:
    """The largest label size whose text box fits inside `rect`, and that box (centred)."""
    x0, x1, y0, y1 = rect
    for size in _LABEL_SIZES if text else ():
        w_pt = text_width_pt(text, size) + 2 * LABEL_PAD_PT
        h_pt = 1.2 * size + 2 * LABEL_PAD_PT
        if w_pt <= (x1 - x0) * pt_per_ms and h_pt <= (y1 - y0) * ROW_PT:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            half_w, half_h = w_pt / 2 / pt_per_ms, h_pt / 2 / ROW_PT
            return size, (cx - half_w, cx + half_w, cy - half_h, cy + half_h)
    return None, None


def format_ms(ms: float) -> str:
    """Milliseconds for a heading or a finish line: whole ms from 100 on, else 3 digits."""
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def _row_units(lanes: int) -> float:
    """A row's height in row units: one lane fills one unit, more lanes widen the row."""
    return min(_MAX_ROW_UNITS, 1.0 + 0.5 * (lanes - 1))


def _overlaps(a: Segment, b: Segment) -> bool:
    return a.start_ms < b.end_ms and b.start_ms < a.end_ms


def _row_lanes(segments: Sequence[Segment]) -> tuple[list[tuple[int, int]], int]:
    """Each segment's (first lane, lanes spanned) within its row, and the row's lane count."""
    alone = [
        s.whole_row and not any(_overlaps(s, t) for t in segments if t is not s) for s in segments
    ]
    laned = [s for s, a in zip(segments, alone, strict=True) if not a]
    lanes = iter(assign_lanes([(s.start_ms, s.end_ms) for s in laned]))
    placed = [(0, 0) if a else (next(lanes), 1) for a in alone]
    count = max((lane + 1 for lane, span in placed if span), default=1)
    return [(lane, span or count) for lane, span in placed], count


def _row_bars(
    segments: Sequence[Segment], top: float, pt_per_ms: float
) -> tuple[list[Bar], int, float]:
    """One row's bars from `top` down, its lane count and its height in row units."""
    places, count = _row_lanes(segments)
    units = _row_units(count)
    lane_h = (units - 2 * _ROW_PAD) / count
    gap = lane_h * _LANE_GAP if count > 1 else 0.0
    bars = []
    for seg, (lane, span) in zip(segments, places, strict=True):
        y0 = top + _ROW_PAD + lane * lane_h + gap / 2
        y1 = top + _ROW_PAD + (lane + span) * lane_h - gap / 2
        size, box = _fit_label(seg.label, (seg.start_ms, seg.end_ms, y0, y1), pt_per_ms)
        bars.append(Bar(seg, lane, seg.start_ms, seg.end_ms, y0, y1, size, box))
    return bars, count, units


def layout_panel(
    segments: Sequence[Segment],
    *,
    heading: str,
    legend: Sequence[LegendEntry],
    finish_ms: float,
    pt_per_ms: float,
) -> Panel:
    """Lay out one panel: rows device, link, edge from the top, lanes where bars overlap.

    Args:
        segments: the bars; zero-length ones are left out.
        heading: the panel's title.
        legend: the panel's legend entries.
        finish_ms: where the panel's finish line goes.
        pt_per_ms: points per millisecond on the time axis (for fitting labels).

    Returns:
        The panel, with the lane count and y extent of every row.
    """
    bars: list[Bar] = []
    lanes: dict[str, int] = {}
    rows: dict[str, tuple[float, float]] = {}
    top = 0.0
    for row in ROWS:
        in_row = [s for s in segments if s.row == row and s.end_ms > s.start_ms]
        row_bars, lanes[row], units = _row_bars(in_row, top, pt_per_ms)
        bars += row_bars
        rows[row] = (top, top + units)
        top += units
    return Panel(heading, tuple(bars), lanes, rows, top, tuple(legend), finish_ms)


def plan_segments(
    timeline: Timeline, post_fuse_s: float, labels: Mapping[int, str]
) -> tuple[list[Segment], list[LegendEntry]]:
    """A plan's bars (one per path and row, then the fuse and the rest) and its legend.

    Args:
        timeline: the plan's timeline.
        post_fuse_s: edge seconds of the fuse and everything after it, from `fuse_start`.
        labels: bar labels by path index, in place of "p{path}".

    Returns:
        (segments, legend entries).
    """
    colors = path_colors([pt.path for pt in timeline.paths])
    segments = []
    for pt in timeline.paths:
        text = labels.get(pt.path, f"p{pt.path}")
        for row, start, end in (
            ("device", pt.device_start, pt.device_end),
            ("link", pt.link_start, pt.link_end),
            ("edge", pt.edge_start, pt.edge_end),
        ):
            segments.append(Segment(row, start * 1e3, end * 1e3, colors[pt.path], text, pt.path))
    legend = []
    if len(colors) <= LEGEND_MAX_PATHS:
        legend = [LegendEntry(labels.get(p, f"p{p}"), c) for p, c in colors.items()]
    if post_fuse_s > 0:
        fuse_ms = timeline.fuse_start * 1e3
        end_ms = fuse_ms + post_fuse_s * 1e3
        segments.append(
            Segment("edge", fuse_ms, end_ms, FUSE_COLOR, "fuse + rest", None, None, True)
        )
        legend.append(LegendEntry("fuse + rest", FUSE_COLOR))
    return segments, legend


def _baseline_segments(
    segments: Sequence[tuple[str, float, float, str]],
) -> tuple[list[Segment], list[LegendEntry]]:
    """The baseline's bars, styled by row, and a legend entry per distinct phase."""
    out, legend = [], {}
    for row, start, end, text in segments:
        if row not in NFL_STYLE:
            raise BadInputError(
                f"timeline segment lane '{row}' is not one of {', '.join(ROWS)}",
                hint="use 'device', 'link' or 'edge'",
            )
        color, hatch = NFL_STYLE[row]
        out.append(Segment(row, start * 1e3, end * 1e3, color, text, hatch=hatch))
        if end > start:
            legend.setdefault((text, row), LegendEntry(f"NFL {text} ({row})", color, hatch))
    return out, list(legend.values())


def time_axis(span_ms: float) -> tuple[float, float]:
    """The time axis for bars ending by `span_ms`: (its extent in ms, points per ms)."""
    x_max_ms = max(span_ms, 1e-9) * X_MARGIN
    return x_max_ms, (FIG_WIDTH_IN - AXES_LEFT_IN - AXES_RIGHT_IN) * 72.0 / x_max_ms


def layout_timelines(
    plan_timeline: Timeline,
    nfl_segments: Sequence[tuple[str, float, float, str]] | None,
    *,
    post_fuse_s: float,
    labels: Mapping[int, str] | None = None,
    plan_label: str | None = None,
) -> TimelineLayout:
    """Lay out the FL plan's panel and, below it on the same time axis, the baseline's.

    Args:
        plan_timeline: the simulated FL plan.
        nfl_segments: the baseline as (lane, start_s, end_s, label) tuples, lane one of
            "device", "link", "edge"; None lays out the plan alone.
        post_fuse_s: edge seconds of the fuse and everything after it.
        labels: optional bar labels by path index, in place of "p{path}".
        plan_label: the top panel's heading (default "FL plan: N paths").

    Returns:
        The panels, the time axis' extent and its scale in points per ms.

    Raises:
        BadInputError: a baseline segment names an unknown lane.
    """
    plan, plan_legend = plan_segments(plan_timeline, post_fuse_s, dict(labels or {}))
    base, base_legend = _baseline_segments(nfl_segments or [])
    plan_ms = plan_timeline.finish * 1e3
    base_ms = max((s.end_ms for s in base), default=0.0)
    x_max_ms, pt_per_ms = time_axis(max([plan_ms, base_ms] + [s.end_ms for s in plan]))
    heading = plan_label or f"FL plan: {len(plan_timeline.paths)} paths"
    top = layout_panel(
        plan,
        heading=f"{heading}, finish {format_ms(plan_ms)}",
        legend=plan_legend,
        finish_ms=plan_ms,
        pt_per_ms=pt_per_ms,
    )
    if top.lanes["edge"] > 1:
        at_once = f"; up to {top.lanes['edge']} paths at once on the edge, one lane each"
        top = replace(top, heading=top.heading + at_once)
    panels = [top]
    if nfl_segments is not None:
        heading = f"NFL baseline (no fused layers): finish {format_ms(base_ms)}"
        panels.append(
            layout_panel(
                base, heading=heading, legend=base_legend, finish_ms=base_ms, pt_per_ms=pt_per_ms
            )
        )
    return TimelineLayout(tuple(panels), x_max_ms, pt_per_ms)
