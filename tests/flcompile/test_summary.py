"""The console summary: its `wrote` line (what OUT holds and how large it is) and its bounds."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from flcompile import models
from flcompile.compile import CompileOptions, compile_model
from flcompile.search import SearchOptions
from flcompile.summary import format_summary, written_line


def test_written_line_lists_entries_once_and_sums_every_file() -> None:
    written = {
        "timeline.png": 999_500,
        "stages/edge_fuse.onnx": 1,
        "plan.json": 500,
        "edge.onnx": 244_300_000,
        "stages/stages.json": 0,
        "device.onnx": 1000,
    }
    # 1000 + 244_300_000 + 500 + 999_500 + 1 = 245_301_001 bytes
    assert written_line("alexnet.flc", written) == (
        "alexnet.flc/: device.onnx edge.onnx plan.json timeline.png stages/ (245.3 MB)"
    )
    assert written_line("o", {"device.onnx": 10, "edge.onnx": 2_500}) == (
        "o/: device.onnx edge.onnx (2.5 KB)"
    )
    # The output marker counts in the size but is not listed.
    assert written_line("o", {"device.onnx": 10, ".flcompile-output.json": 2_500}) == (
        "o/: device.onnx (2.5 KB)"
    )


def test_summary_reports_the_size_of_what_was_written(tmp_path: Path) -> None:
    source = tmp_path / "m.onnx"
    onnx.save_model(models.build("squeezenet", width=0.25, size=64), str(source))
    out = tmp_path / "out"
    options = CompileOptions(search=SearchOptions(grid=(2, 2)), runs=0, emit_stages=True)
    result = compile_model(str(source), out, options)
    on_disk = {}
    for folder, _, files in os.walk(out):
        for name in files:
            path = Path(folder) / name
            on_disk[path.relative_to(out).as_posix()] = path.stat().st_size
    assert result.written == on_disk
    assert "stages/stages.json" in on_disk and "tiled.onnx" not in on_disk
    line = f"wrote      {written_line(str(out), on_disk)}"
    assert line in format_summary(result).splitlines()
    number, unit = line.rsplit("(", 1)[1].rstrip(")").split()
    scale = {"KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    assert abs(float(number) * scale - sum(on_disk.values())) <= 0.05 * scale
    # The space bound sits beside the fluid bound, with both ratios.
    plan, space = result.plan["predicted_s"], result.plan["lower_bound_space_s"]
    bound_line = next(x for x in format_summary(result).splitlines() if "space lower bound" in x)
    assert f"plan/space {plan / space:.3f}" in bound_line
    assert f"space/fluid {space / result.plan['lower_bound_s']:.3f}" in bound_line
