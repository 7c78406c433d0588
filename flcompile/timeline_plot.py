"""Draw a plan's simulated timeline as a Gantt chart PNG: device, link and edge lanes per path.

The FL plan is on top; the NFL (or other baseline) timeline is drawn below it on the same
time axis, so their finish times compare at a glance. Times are shown in milliseconds.
Only matplotlib's object API with the Agg canvas is used, so global pyplot state is untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from flcompile.errors import BadInputError
from flcompile.schedule import Timeline

logger = logging.getLogger(__name__)

LANES = ("device", "link", "edge")
_LANE_Y = {"device": 2.0, "link": 1.0, "edge": 0.0}
_BAR_HEIGHT = 0.7
_LEGEND_MAX_PATHS = 16
_FUSE_COLOR = "0.35"
_NFL_COLORS = {"device": "tab:blue", "link": "tab:orange", "edge": "tab:green"}


def _path_colors(paths: Sequence[int]) -> dict[int, tuple[float, ...]]:
    """A distinct colour per path: tab10/tab20 for few paths, a cyclic map for many."""
    from matplotlib import colormaps

    ordered = sorted(set(paths))
    n = len(ordered)
    cmap: Colormap
    if n <= 10:
        cmap = colormaps["tab10"]
        return {p: cmap(i) for i, p in enumerate(ordered)}
    if n <= 20:
        cmap = colormaps["tab20"]
        return {p: cmap(i) for i, p in enumerate(ordered)}
    cmap = colormaps["turbo"]
    return {p: cmap(0.05 + 0.9 * i / (n - 1)) for i, p in enumerate(ordered)}


def _setup_lanes(ax: Axes, subtitle: str) -> None:
    ax.set_yticks([_LANE_Y[lane] for lane in LANES])
    ax.set_yticklabels(list(LANES))
    ax.set_ylim(-0.6, 2.6)
    ax.set_title(subtitle, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)


def _bar(
    ax: Axes,
    lane: str,
    start_ms: float,
    end_ms: float,
    *,
    color: object,
    label: str | None,
    min_label_ms: float,
) -> None:
    width = end_ms - start_ms
    if width <= 0:
        return
    y = _LANE_Y[lane]
    ax.broken_barh(
        [(start_ms, width)],
        (y - _BAR_HEIGHT / 2, _BAR_HEIGHT),
        facecolors=color,
        edgecolors="white",
        linewidth=0.5,
    )
    if label and width >= min_label_ms:
        ax.text(
            start_ms + width / 2,
            y,
            label,
            ha="center",
            va="center",
            fontsize=7,
            clip_on=True,
        )


def _finish_line(ax: Axes, finish_ms: float, color: str) -> None:
    ax.axvline(finish_ms, color=color, linestyle="--", linewidth=1.2)
    ax.annotate(
        f"{finish_ms:.3g} ms",
        xy=(finish_ms, 2.45),
        xytext=(3, 0),
        textcoords="offset points",
        fontsize=8,
        color=color,
        va="center",
    )


def plot_timelines(
    path: str | os.PathLike,
    plan_timeline: Timeline,
    *,
    nfl_segments: Sequence[tuple[str, float, float, str]] | None,
    title: str,
    post_fuse_s: float,
    labels: Mapping[int, str] | None = None,
    plan_label: str | None = None,
) -> None:
    """Write a Gantt chart of `plan_timeline`, with the NFL timeline beneath it, as a PNG.

    The top panel has three lanes (device, link, edge) with one bar per path segment,
    labelled "p{path}" (or `labels[path]`) and coloured per path; zero-length segments are
    skipped. The fuse and the rest of the model are one grey edge bar from `fuse_start`,
    and a dashed line marks the finish. The bottom panel draws `nfl_segments` on the same
    time axis. A legend is drawn only for up to 16 paths; bar labels only where they fit.

    Args:
        path: where to write the PNG.
        plan_timeline: the simulated FL plan.
        nfl_segments: the baseline as (lane, start_s, end_s, label) tuples, lane one of
            "device", "link", "edge"; None draws the plan alone.
        title: the figure's title (e.g. the model name, rate and solver).
        plan_label: the top panel's heading (default "FL plan: N paths").
        post_fuse_s: edge seconds of the fuse and everything after it.
        labels: optional bar labels by path index, in place of "p{path}".

    Raises:
        BadInputError: an NFL segment names an unknown lane, or the PNG cannot be written.
    """
    labels = dict(labels or {})
    segments = list(nfl_segments or [])
    for lane, _start, _end, _label in segments:
        if lane not in _LANE_Y:
            raise BadInputError(
                f"timeline segment lane '{lane}' is not one of {', '.join(LANES)}",
                hint="use 'device', 'link' or 'edge'",
            )

    plan_finish_ms = plan_timeline.finish * 1e3
    fuse_start_ms = plan_timeline.fuse_start * 1e3
    nfl_finish_ms = max((end for _l, _s, end, _t in segments), default=0.0) * 1e3
    span_ms = max(plan_finish_ms, nfl_finish_ms, fuse_start_ms + post_fuse_s * 1e3, 1e-9)
    min_label_ms = span_ms * 0.03

    n_panels = 2 if nfl_segments is not None else 1
    fig = Figure(figsize=(12, 2.6 * n_panels + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(title, fontsize=12)

    ax = axes[0]
    paths = [pt.path for pt in plan_timeline.paths]
    colors = _path_colors(paths)
    heading = plan_label or f"FL plan: {len(paths)} paths"
    _setup_lanes(ax, f"{heading}, finish {plan_finish_ms:.3g} ms")
    for pt in plan_timeline.paths:
        text = labels.get(pt.path, f"p{pt.path}")
        color = colors[pt.path]
        for lane, start, end in (
            ("device", pt.device_start, pt.device_end),
            ("link", pt.link_start, pt.link_end),
            ("edge", pt.edge_start, pt.edge_end),
        ):
            _bar(
                ax, lane, start * 1e3, end * 1e3, color=color, label=text, min_label_ms=min_label_ms
            )
    _bar(
        ax,
        "edge",
        fuse_start_ms,
        fuse_start_ms + post_fuse_s * 1e3,
        color=_FUSE_COLOR,
        label="fuse + rest",
        min_label_ms=min_label_ms,
    )
    _finish_line(ax, plan_finish_ms, "tab:red")
    handles = []
    if len(colors) <= _LEGEND_MAX_PATHS:
        handles = [Patch(color=c, label=labels.get(p, f"p{p}")) for p, c in colors.items()]
    if handles or post_fuse_s > 0:
        handles.append(Patch(color=_FUSE_COLOR, label="fuse + rest"))
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=7,
            frameon=False,
        )

    if nfl_segments is not None:
        ax_nfl = axes[1]
        _setup_lanes(ax_nfl, f"NFL baseline: finish {nfl_finish_ms:.3g} ms")
        for lane, start, end, text in segments:
            _bar(
                ax_nfl,
                lane,
                start * 1e3,
                end * 1e3,
                color=_NFL_COLORS[lane],
                label=text,
                min_label_ms=min_label_ms,
            )
        if segments:
            _finish_line(ax_nfl, nfl_finish_ms, "tab:purple")
        if plan_finish_ms > 0:
            ax_nfl.axvline(plan_finish_ms, color="tab:red", linestyle=":", linewidth=1.0)

    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(0, span_ms * 1.08)
    try:
        fig.savefig(os.fspath(path), format="png", dpi=110)
    except OSError as e:
        raise BadInputError(
            f"{os.fspath(path)}: cannot write the timeline plot ({e.strerror or e})",
            hint="choose a writable -o directory",
        ) from e
    logger.debug("timeline written to %s", path)
