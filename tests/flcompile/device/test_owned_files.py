"""flcompile run's files: written whole; an existing file is replaced only if flcompile wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flcompile.device.owned_files import check_writable, write_file
from flcompile.errors import BadInputError


def _write_json(path: Path, value: dict) -> None:
    write_file(path, "json", "--report", lambda tmp: tmp.write_text(json.dumps(value)))


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.savez(f, **arrays)

    write_file(path, "npz", "--save-output", save)


def test_json_is_replaced_only_when_ours(tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    _write_json(report, {"producer": "flcompile", "n": 1})
    _write_json(report, {"producer": "flcompile", "n": 2})  # ours: replaced
    assert json.loads(report.read_text())["n"] == 2
    user = tmp_path / "mine.json"
    user.write_text('{"n": 0}')
    with pytest.raises(BadInputError, match="not written by flcompile"):
        check_writable(user, "json", "--report")
    assert user.read_text() == '{"n": 0}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_npz_carries_its_mark_and_loads_by_name(tmp_path: Path) -> None:
    path = tmp_path / "y.npz"
    _write_npz(path, output=np.arange(3.0))
    check_writable(path, "npz", "--save-output")  # ours: may be replaced
    with np.load(path) as data:
        assert list(data) == ["output"]
        np.testing.assert_array_equal(data["output"], np.arange(3.0))
    user = tmp_path / "theirs.npz"
    np.savez(user, output=np.zeros(2))
    with pytest.raises(BadInputError, match="not written by flcompile"):
        check_writable(user, "npz", "--save-output")


def test_png_without_our_software_tag_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "timeline_measured.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(BadInputError, match="not written by flcompile"):
        check_writable(png, "png", "--timeline")


def test_missing_folder_and_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such directory"):
        check_writable(tmp_path / "nope" / "run.json", "json", "--report")
    with pytest.raises(BadInputError, match="is a directory"):
        check_writable(tmp_path, "json", "--report")
