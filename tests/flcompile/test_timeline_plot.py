"""Tests for flcompile.timeline_plot: the Gantt chart PNG of a plan and its NFL baseline."""

from __future__ import annotations

import pytest

from flcompile.errors import BadInputError
from flcompile.schedule import PathTimes, Timeline
from flcompile.timeline_plot import plot_timelines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _timeline(num_paths: int) -> Timeline:
    """Paths back to back on the device, each sent right after, edge after the link."""
    paths = []
    for i in range(num_paths):
        d0, d1 = i * 1e-3, (i + 1) * 1e-3
        l0, l1 = d1, d1 + 0.5e-3
        e0, e1 = l1, l1 + (0.2e-3 if i % 2 else 0.0)  # some zero-length edge parts
        paths.append(PathTimes(i, d0, d1, l0, l1, e0, e1))
    fuse = max(p.edge_end for p in paths)
    return Timeline(paths=tuple(paths), fuse_start=fuse, finish=fuse + 2e-3)


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_plot_with_nfl(tmp_path):
    out = tmp_path / "timeline.png"
    nfl = [
        ("device", 0.0, 3e-3, "local"),
        ("link", 3e-3, 5e-3, "send x"),
        ("edge", 5e-3, 7e-3, "rest"),
    ]
    plot_timelines(
        out,
        _timeline(4),
        nfl_segments=nfl,
        title="tiny, 1.8 MB/s",
        post_fuse_s=2e-3,
        labels={0: "first"},
    )
    assert _is_png(out)


def test_plot_without_nfl_many_paths(tmp_path):
    out = tmp_path / "timeline.png"
    plot_timelines(out, _timeline(64), nfl_segments=None, title="8x8", post_fuse_s=2e-3)
    assert _is_png(out)


def test_plot_rejects_unknown_lane(tmp_path):
    with pytest.raises(BadInputError, match="'cpu'"):
        plot_timelines(
            tmp_path / "t.png",
            _timeline(1),
            nfl_segments=[("cpu", 0.0, 1.0, "x")],
            title="t",
            post_fuse_s=0.0,
        )
    assert not (tmp_path / "t.png").exists()
