"""Tests for flcompile.timeline_plot: the Gantt chart PNG of a plan and its NFL baseline."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from flcompile.errors import BadInputError
from flcompile.schedule import PathTimes, Timeline
from flcompile.timeline_layout import FIG_WIDTH_IN, NFL_STYLE, layout_timelines, path_colors
from flcompile.timeline_plot import draw_timelines, plot_timelines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = 110
NFL = [
    ("device", 0.0, 3e-3, "local"),
    ("link", 3e-3, 5e-3, "send x"),
    ("edge", 5e-3, 7e-3, "rest"),
]


def _timeline(num_paths: int, edge_s: float = 0.2e-3) -> Timeline:
    """Paths back to back on the device, each sent right after, edge after the link.

    Odd paths get `edge_s` of edge work, even ones none (zero-length bars are skipped);
    with `edge_s` longer than a send, edge parts overlap as on an unlimited edge.
    """
    paths = []
    for i in range(num_paths):
        d0, d1 = i * 1e-3, (i + 1) * 1e-3
        l0, l1 = d1, d1 + 0.5e-3
        e0, e1 = l1, l1 + (edge_s if i % 2 else 0.0)
        paths.append(PathTimes(i, d0, d1, l0, l1, e0, e1))
    fuse = max(p.edge_end for p in paths)
    return Timeline(paths=tuple(paths), fuse_start=fuse, finish=fuse + 2e-3)


def _has_color(pixels: np.ndarray, color) -> bool:
    """Some pixel of the RGB(A) image is within rounding of `color`."""
    return bool((np.abs(pixels[..., :3] - np.array(to_rgb(color))) < 2.5 / 255).all(-1).any())


def test_png_has_the_figure_size_and_every_fill(tmp_path):
    out = tmp_path / "timeline.png"
    timeline = _timeline(4, edge_s=2.5e-3)
    layout = layout_timelines(timeline, NFL, post_fuse_s=2e-3, labels={0: "a"})
    plot_timelines(out, layout, title="tiny, 1.8 MB/s")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    pixels = imread(out)
    height, width = pixels.shape[:2]
    assert abs(width - FIG_WIDTH_IN * DPI) < 0.1 * FIG_WIDTH_IN * DPI
    assert 3.0 * DPI < height < width
    for color in path_colors(range(4)).values():
        assert _has_color(pixels, color)
    for color, _hatch in NFL_STYLE.values():
        assert _has_color(pixels, color)
    assert (pixels[..., :3] < 0.5).all(-1).mean() > 0.01  # dark ink: text, axes, the fuse


def test_drawn_labels_lie_inside_their_own_bars():
    # Odd paths' edge parts overlap (2.5 ms of edge, a send every 1 ms): several lanes.
    layout = layout_timelines(
        _timeline(8, edge_s=2.5e-3), NFL, post_fuse_s=3e-3, labels={3: "three"}
    )
    assert layout.panels[0].lanes["edge"] == 2
    fig = draw_timelines(layout, "lanes")
    renderer = fig.canvas.get_renderer()
    patches, labels = {}, {}
    for ax in fig.axes:
        patches |= {p.get_gid(): p for p in ax.patches if p.get_gid()}
        labels |= {t.get_gid(): t for t in ax.texts if t.get_gid()}
    assert len(patches) == sum(len(p.bars) for p in layout.panels)
    assert len(labels) == sum(b.label_size is not None for p in layout.panels for b in p.bars)
    assert len(labels) >= 10
    boxes = {gid: p.get_window_extent(renderer) for gid, p in patches.items()}
    for gid, text in labels.items():
        box = text.get_window_extent(renderer)
        own = boxes["bar:" + gid.removeprefix("label:")]
        assert own.x0 - 0.5 <= box.x0 and box.x1 <= own.x1 + 0.5, (gid, text.get_text())
        assert own.y0 - 0.5 <= box.y0 and box.y1 <= own.y1 + 0.5, (gid, text.get_text())
        for other_gid, other in boxes.items():
            if other is not own:
                assert not box.shrunk(0.98, 0.98).overlaps(other), (gid, other_gid)


def test_plot_without_nfl_many_paths(tmp_path):
    out = tmp_path / "timeline.png"
    plot_timelines(out, layout_timelines(_timeline(64), None, post_fuse_s=2e-3), title="8x8")
    with_nfl = tmp_path / "with_nfl.png"
    plot_timelines(with_nfl, layout_timelines(_timeline(64), NFL, post_fuse_s=2e-3), title="8x8")
    alone, both = imread(out), imread(with_nfl)
    for pixels in (alone, both):
        assert abs(pixels.shape[1] - FIG_WIDTH_IN * DPI) < 0.1 * FIG_WIDTH_IN * DPI
    assert alone.shape[0] + 100 < both.shape[0]  # the baseline's panel is left out


def test_plot_rejects_unknown_lane(tmp_path):
    with pytest.raises(BadInputError, match="'cpu'"):
        layout = layout_timelines(_timeline(1), [("cpu", 0.0, 1.0, "x")], post_fuse_s=0.0)
        plot_timelines(tmp_path / "t.png", layout, title="t")
    assert not (tmp_path / "t.png").exists()


def test_unwritable_path_is_a_user_error(tmp_path):
    with pytest.raises(BadInputError, match="cannot write the timeline plot"):
        layout = layout_timelines(_timeline(2), None, post_fuse_s=0.0)
        plot_timelines(tmp_path / "missing" / "t.png", layout, title="t")
