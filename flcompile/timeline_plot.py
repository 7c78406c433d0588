"""Draw a plan's simulated timeline as a Gantt chart PNG: device, link and edge rows per path.

The FL plan is on top; the NFL (or other baseline) timeline is drawn below it on the same
time axis, so their finish times compare at a glance. Times are shown in milliseconds.
Where the edge runs paths at once, each runs on a lane of its own within the edge row
(the layout is computed first, by flcompile.timeline_layout). Only matplotlib's object API
with the Agg canvas is used, so global pyplot state is untouched.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from flcompile.errors import BadInputError
from flcompile.timeline_layout import (
    AXES_LEFT_IN,
    AXES_RIGHT_IN,
    FIG_WIDTH_IN,
    LABEL_PAD_PT,
    ROW_IN,
    Bar,
    Panel,
    TimelineLayout,
    format_ms,
)

logger = logging.getLogger(__name__)

_TITLE_IN = 0.45  # above the first panel, for the figure's title
_HEADING_IN = 0.3  # above each panel, for its heading
_BOTTOM_IN = 0.55  # below the last panel, for the time axis
_LEGEND_ROW_IN = 0.17
_MIN_OUTLINED_PT = 4.0
_PLAN_FINISH = "tab:red"
_BASELINE_FINISH = "tab:purple"


def _text_color(bar: Bar) -> str:
    r, g, b, _a = bar.segment.color
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def _draw_bar(ax: Axes, bar: Bar, gid: str, pt_per_ms: float) -> None:
    """One bar and, if it fits, its label, centred in the bar (gids pair them for tests).

    A bar only a few points wide gets no outline, which would hide its colour.
    """
    seg = bar.segment
    outline = 0.5 if (bar.x1 - bar.x0) * pt_per_ms >= _MIN_OUTLINED_PT else 0.0
    rect = Rectangle(
        (bar.x0, bar.y0),
        bar.x1 - bar.x0,
        bar.y1 - bar.y0,
        facecolor=seg.color,
        edgecolor="white" if seg.hatch is None else "0.3",
        linewidth=outline,
        hatch=seg.hatch,
        gid=f"bar:{gid}",
    )
    ax.add_patch(rect)
    if bar.label_size is None:
        return
    box = None
    if seg.hatch is not None:
        pad = LABEL_PAD_PT / bar.label_size
        box = {"boxstyle": f"square,pad={pad:.3f}", "facecolor": "white", "linewidth": 0}
    ax.text(
        (bar.x0 + bar.x1) / 2,
        (bar.y0 + bar.y1) / 2,
        seg.label,
        ha="center",
        va="center",
        fontsize=bar.label_size,
        color=_text_color(bar),
        bbox=box,
        gid=f"label:{gid}",
    )


def _draw_rows(ax: Axes, panel: Panel) -> None:
    """Row names on the y axis, faint lines between rows, the time grid, and the heading."""
    ax.set_ylim(panel.height, 0.0)
    ax.set_yticks([(y0 + y1) / 2 for y0, y1 in panel.rows.values()])
    ax.set_yticklabels(list(panel.rows))
    for _y0, y1 in list(panel.rows.values())[:-1]:
        ax.axhline(y1, color="0.85", linewidth=0.6)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(panel.heading, fontsize=10, loc="left")


def _finish_line(ax: Axes, finish_ms: float, color: str) -> None:
    ax.axvline(finish_ms, color=color, linestyle="--", linewidth=1.2)
    ax.annotate(
        format_ms(finish_ms),
        xy=(finish_ms, 1.0),
        xycoords=ax.get_xaxis_transform(),
        xytext=(3, -8),
        textcoords="offset points",
        fontsize=8,
        color=color,
        va="center",
    )


def _legend(ax: Axes, panel: Panel, extra: Sequence[Line2D] = ()) -> None:
    """The panel's legend to the right of its axes, in as many columns as its height needs."""
    handles: list[Patch | Line2D] = [
        Patch(
            facecolor=e.color, hatch=e.hatch, edgecolor="0.3" if e.hatch else e.color, label=e.label
        )
        for e in panel.legend
    ]
    handles += extra
    if not handles:
        return
    ncol = max(1, math.ceil(len(handles) * _LEGEND_ROW_IN / (panel.height * ROW_IN)))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
        ncol=ncol,
    )


def _draw_panel(
    ax: Axes,
    panel: Panel,
    index: int,
    pt_per_ms: float,
    plan_finish_ms: float | None,
    finish_label: str,
) -> None:
    """One panel; `plan_finish_ms` also marks the first panel's finish (on the others)."""
    _draw_rows(ax, panel)
    for i, bar in enumerate(panel.bars):
        _draw_bar(ax, bar, f"{index}:{i}", pt_per_ms)
    extra = []
    if panel.bars:
        color = _PLAN_FINISH if plan_finish_ms is None else _BASELINE_FINISH
        _finish_line(ax, panel.finish_ms, color)
    if plan_finish_ms is not None and plan_finish_ms > 0:
        ax.axvline(plan_finish_ms, color=_PLAN_FINISH, linestyle=":", linewidth=1.0)
        extra.append(Line2D([], [], color=_PLAN_FINISH, linestyle=":", label=finish_label))
    _legend(ax, panel, extra)


def draw_timelines(layout: TimelineLayout, title: str) -> Figure:
    """Draw a laid-out timeline on a new Agg figure whose axes have the layout's exact size.

    Args:
        layout: the panels, from `layout_timelines`.
        title: the figure's title.

    Returns:
        The figure; each bar's patch has gid "bar:P:I" and its label "label:P:I", for
        panel P and bar I.
    """
    heights = [_HEADING_IN + p.height * ROW_IN for p in layout.panels]
    fig_h = _TITLE_IN + sum(heights) + _BOTTOM_IN
    fig = Figure(figsize=(FIG_WIDTH_IN, fig_h))
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=12, y=1.0 - 0.1 / fig_h, va="top")
    width = (FIG_WIDTH_IN - AXES_LEFT_IN - AXES_RIGHT_IN) / FIG_WIDTH_IN
    top = fig_h - _TITLE_IN
    axes: list[Axes] = []
    for index, (panel, h) in enumerate(zip(layout.panels, heights, strict=True)):
        top -= h
        rect = (AXES_LEFT_IN / FIG_WIDTH_IN, top / fig_h, width, (h - _HEADING_IN) / fig_h)
        ax = fig.add_axes(rect, sharex=axes[0] if axes else None)
        plan_finish = layout.panels[0].finish_ms if index else None
        _draw_panel(ax, panel, index, layout.pt_per_ms, plan_finish, layout.finish_label)
        axes.append(ax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(0, layout.x_max_ms)
    return fig


def plot_timelines(path: str | os.PathLike, layout: TimelineLayout, *, title: str) -> None:
    """Write a Gantt chart of a laid-out plan, with the NFL timeline beneath it, as a PNG.

    The top panel has three rows (device, link, edge) with one bar per path segment,
    labelled "p{path}" (or the layout's labels) and coloured per path; zero-length segments
    are skipped. Paths that overlap in time within a row (an edge running paths at once)
    each get a lane of their own in that row. The fuse and the rest of the model are one
    grey edge bar from `fuse_start`, and a dashed line marks the finish. The bottom panel
    draws the baseline's segments on the same time axis, in hatched neutral fills of their
    own. A legend names up to 16 paths; a label is drawn only inside its own bar, where it
    fits.

    Args:
        path: where to write the PNG.
        layout: the plan's panel and the baseline's, from `layout_timelines`.
        title: the figure's title (e.g. the model name, rate and solver).

    Raises:
        BadInputError: the PNG cannot be written.
    """
    save_png(draw_timelines(layout, title), path, hint="choose a writable -o directory")


def save_png(
    fig: Figure, path: str | os.PathLike, *, hint: str, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a drawn timeline as a PNG.

    Args:
        fig: the figure, from `draw_timelines`.
        path: where to write it.
        hint: what to do when it cannot be written.
        metadata: PNG text chunks, e.g. {"Software": ...}.

    Raises:
        BadInputError: the file cannot be written.
    """
    try:
        fig.savefig(
            os.fspath(path),
            format="png",
            dpi=110,
            bbox_inches="tight",
            pad_inches=0.1,
            metadata=dict(metadata or {}),
        )
    except OSError as e:
        raise BadInputError(
            f"{os.fspath(path)}: cannot write the timeline plot ({e.strerror or e})", hint=hint
        ) from e
    logger.debug("timeline written to %s", path)
