"""Tests for flcompile.atomic_output: the output directory is replaced whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from flcompile.atomic_output import atomic_directory, check_writable
from flcompile.errors import BadInputError


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _old_output(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "device.onnx").write_bytes(b"old device")
    (out / "sub" / "x.txt").write_text("old")
    return out


def test_success_creates_directory(tmp_path):
    out = tmp_path / "new"
    with atomic_directory(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".new.tmp-")
        (tmp / "plan.json").write_text("{}")
        assert not out.exists()
    assert _snapshot(out) == {"plan.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_success_replaces_existing_directory(tmp_path):
    out = _old_output(tmp_path)
    with atomic_directory(out) as tmp:
        (tmp / "device.onnx").write_bytes(b"new device")
    assert _snapshot(out) == {"device.onnx": b"new device"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exception_leaves_old_directory_untouched(tmp_path):
    out = _old_output(tmp_path)
    before = _snapshot(out)
    with pytest.raises(RuntimeError, match="boom"), atomic_directory(out) as tmp:
        (tmp / "device.onnx").write_bytes(b"half written")
        raise RuntimeError("boom")
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exception_removes_parents_it_created(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(KeyboardInterrupt), atomic_directory(out):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_missing_parents_are_created_on_success(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with atomic_directory(out) as tmp:
        (tmp / "f").write_text("x")
    assert (out / "f").read_text() == "x"


def test_parent_is_a_file_is_bad_input_before_the_block(tmp_path):
    (tmp_path / "afile").write_text("x")
    ran = False
    with (
        pytest.raises(BadInputError, match="afile is a file") as info,
        atomic_directory(tmp_path / "afile" / "out"),
    ):
        ran = True
    assert not ran
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    with pytest.raises(BadInputError):
        check_writable(tmp_path / "afile" / "deeper" / "out")


def test_out_dir_is_a_file_or_exists_without_overwrite(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(BadInputError, match="not a directory"):
        check_writable(tmp_path / "out")
    (tmp_path / "dir").mkdir()
    assert check_writable(tmp_path / "dir") == tmp_path / "dir"
    with pytest.raises(BadInputError, match="already exists"):
        check_writable(tmp_path / "dir", overwrite=False)
