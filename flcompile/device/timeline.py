"""timeline_measured.png: a measured frame above the plan's predicted timeline, one time axis.

The measured panel reads a frame's events (runner.py): device stages, the link as paced by
the sender, and the edge stages and the fuse as the server timed them.
"""

from __future__ import annotations

import os
from pathlib import Path

from flcompile.deploy.plan_index import PlanIndex
from flcompile.device.owned_files import PNG_SOFTWARE, write_file
from flcompile.device.runner import FrameRecord
from flcompile.schedule import PathTimes, Timeline
from flcompile.timeline_layout import (
    TimelineLayout,
    format_ms,
    layout_panel,
    plan_segments,
    time_axis,
)
from flcompile.timeline_plot import draw_timelines, save_png


def measured_timeline(record: FrameRecord, index: PlanIndex) -> tuple[Timeline, float]:
    """A frame's measured events as a Timeline, and the fuse's seconds.

    A path without an edge stage, or whose edge times are missing (a failed frame), has
    its edge bar empty at the end of its send.

    Args:
        record: the frame.
        index: its plan.

    Returns:
        (timeline in run order, seconds of the fuse and the rest on the edge).
    """
    by_kind: dict[tuple[str, int | None], dict] = {(e["kind"], e["path"]): e for e in record.events}
    paths = []
    for stage in index.paths:
        edge = by_kind.get(("edge", stage.path))
        if not stage.sends:  # nothing to compute or send: empty bars where its edge stage began
            at = edge["received"] if edge else 0.0
            device = send = {"start": at, "end": at}
        else:
            device = by_kind[("device", stage.path)]
            send = by_kind[("send", stage.path)]
        edge_start = edge["start"] if edge and stage.has_edge else send["end"]
        edge_end = edge["end"] if edge and stage.has_edge else send["end"]
        paths.append(
            PathTimes(
                stage.path,
                device["start"],
                device["end"],
                send["start"],
                send["end"],
                edge_start,
                edge_end,
            )
        )
    fuse = by_kind.get(("fuse", None))
    fuse_start = fuse["start"] if fuse else max(p.edge_end for p in paths)
    post_fuse = fuse["end"] - fuse["start"] if fuse else 0.0
    return Timeline(tuple(paths), fuse_start, record.latency_s), post_fuse


def layout_measured(
    measured: tuple[Timeline, float],
    predicted: tuple[Timeline, float],
    *,
    heading: str,
) -> TimelineLayout:
    """The measured panel above the predicted one, on one time axis.

    Args:
        measured: (timeline, post-fuse seconds) of the measured frame.
        predicted: (timeline, post-fuse seconds) the plan predicts.
        heading: the measured panel's heading (before its finish time).

    Returns:
        The layout.
    """
    panels_segments = [plan_segments(t, post, {}) for t, post in (measured, predicted)]
    ends = [s.end_ms for segments, _ in panels_segments for s in segments]
    finishes = [measured[0].finish * 1e3, predicted[0].finish * 1e3]
    x_max_ms, pt_per_ms = time_axis(max(ends + finishes))
    headings = (
        f"{heading}, finish {format_ms(finishes[0])}",
        f"predicted by the plan, finish {format_ms(finishes[1])}",
    )
    panels = tuple(
        layout_panel(segments, heading=title, legend=legend, finish_ms=finish, pt_per_ms=pt_per_ms)
        for (segments, legend), title, finish in zip(
            panels_segments, headings, finishes, strict=True
        )
    )
    return TimelineLayout(panels, x_max_ms, pt_per_ms, finish_label="measured finish")


def plot_measured(
    path: str | os.PathLike,
    record: FrameRecord,
    index: PlanIndex,
    predicted: tuple[Timeline, float],
    *,
    title: str,
    heading: str,
) -> None:
    """Write timeline_measured.png.

    Args:
        path: the PNG to write.
        record: the frame to draw.
        index: its plan.
        predicted: (timeline, post-fuse seconds) the plan predicts.
        title: the figure's title.
        heading: the measured panel's heading.

    Raises:
        BadInputError: the file cannot be written, or is a user's.
    """
    layout = layout_measured(measured_timeline(record, index), predicted, heading=heading)
    figure = draw_timelines(layout, title)
    write_file(
        Path(path),
        "png",
        "--timeline",
        lambda tmp: save_png(
            figure, tmp, hint="choose another --timeline", metadata={"Software": PNG_SOFTWARE}
        ),
    )
