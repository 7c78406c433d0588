"""Tests for flcompile.atomic_output: the output directory is replaced whole or not at all,
and only when flcompile wrote it (flcompile.output_guard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flcompile.atomic_output
from flcompile.atomic_output import atomic_directory, check_writable
from flcompile.errors import BadInputError
from flcompile.output_guard import MARKER, is_flcompile_output, remove_output


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, flcompile's marker left out."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != MARKER
    }


def _old_output(tmp_path: Path) -> Path:
    """An earlier flcompile output: out/device.onnx and out/sub/x.txt, with the marker."""
    out = tmp_path / "out"
    with atomic_directory(out) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "device.onnx").write_bytes(b"old device")
        (tmp / "sub" / "x.txt").write_text("old")
    return out


def test_success_creates_directory(tmp_path):
    out = tmp_path / "new"
    with atomic_directory(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".new.tmp-")
        (tmp / "plan.json").write_text("{}")
        assert not out.exists()
    assert _snapshot(out) == {"plan.json": b"{}"}
    assert json.loads((out / MARKER).read_text())["files"] == ["plan.json"]
    assert is_flcompile_output(out)
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


def test_empty_directory_is_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with atomic_directory(out) as tmp:
        (tmp / "plan.json").write_text("{}")
    assert _snapshot(out) == {"plan.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_users_directory_is_refused_before_the_block(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    ran = False
    with (
        pytest.raises(BadInputError, match="exists and is not an flcompile output") as info,
        atomic_directory(out),
    ):
        ran = True
    assert not ran and info.value.exit_code == 2
    assert str(info.value) == (
        f"{out} exists and is not an flcompile output; choose another -o or remove it"
    )
    assert _snapshot(out) == {"notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("fill", ["empty", "old_output"])
def test_a_file_added_during_the_block_stops_the_commit(tmp_path, fill):
    out = tmp_path / "out"
    if fill == "empty":
        out.mkdir()
    else:
        _old_output(tmp_path)
    before = _snapshot(out)
    with (
        pytest.raises(BadInputError, match="not an flcompile output"),
        atomic_directory(out) as tmp,
    ):
        (tmp / "device.onnx").write_bytes(b"new device")
        (out / "notes.txt").write_text("added meanwhile")
    assert _snapshot(out) == {**before, "notes.txt": b"added meanwhile"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_link_made_during_the_block_stops_the_commit(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(BadInputError, match="symbolic link"), atomic_directory(out) as tmp:
        (tmp / "device.onnx").write_bytes(b"new device")
        out.symlink_to(tmp_path / "elsewhere")
    assert out.is_symlink() and list((tmp_path / "elsewhere").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "out"]


def test_a_file_added_between_the_check_and_the_rename_is_given_back(tmp_path, monkeypatch):
    out = _old_output(tmp_path)
    real = flcompile.atomic_output.is_flcompile_output

    def late_write(directory: Path) -> bool:  # the user writes into the moved-aside backup
        (directory / "late.txt").write_text("mine")
        return real(directory)

    monkeypatch.setattr(flcompile.atomic_output, "is_flcompile_output", late_write)
    with (
        pytest.raises(BadInputError, match="not an flcompile output"),
        atomic_directory(out) as tmp,
    ):
        (tmp / "device.onnx").write_bytes(b"new device")
    assert _snapshot(out) == {
        "device.onnx": b"old device",
        "sub/x.txt": b"old",
        "late.txt": b"mine",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _marked(tmp_path: Path) -> Path:
    out = tmp_path / "o"
    with atomic_directory(out) as tmp:
        (tmp / "d").mkdir()
        (tmp / "d" / "a.onnx").write_bytes(b"a")
        (tmp / "b.json").write_text("{}")
    return out


@pytest.mark.parametrize(
    "spoil",
    [
        lambda o: (o / MARKER).unlink(),
        lambda o: (o / MARKER).write_text("not json"),
        lambda o: (o / MARKER).write_text('{"producer": "other", "files": ["b.json", "d/a.onnx"]}'),
        lambda o: (o / MARKER).write_text('{"producer": "flcompile", "files": "b.json"}'),
        lambda o: (o / "d" / "a.onnx").unlink(),
        lambda o: (o / "notes.txt").write_text("mine"),
        lambda o: (o / "d" / "notes.txt").write_text("mine"),
        lambda o: (o / "empty_dir").mkdir(),
        lambda o: (o / "link").symlink_to(o / "b.json"),
    ],
    ids=[
        "no-marker",
        "bad-json",
        "other-producer",
        "files-not-a-list",
        "listed-file-missing",
        "extra-file",
        "extra-file-in-subdir",
        "extra-dir",
        "extra-symlink",
    ],
)
def test_only_an_exact_marked_output_counts_as_flcompiles(tmp_path, spoil):
    out = _marked(tmp_path)
    assert is_flcompile_output(out)
    spoil(out)
    assert not is_flcompile_output(out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not remove_output(out)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    with pytest.raises(BadInputError):
        check_writable(out)


def test_remove_output_deletes_only_what_it_wrote(tmp_path):
    out = _marked(tmp_path)
    assert remove_output(out)
    assert list(tmp_path.iterdir()) == []


def test_a_link_to_the_output_is_refused(tmp_path):
    real = _marked(tmp_path)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(BadInputError, match="symbolic link"):
        check_writable(tmp_path / "link")
    assert is_flcompile_output(real)


def test_inputs_and_their_folders_are_protected(tmp_path):
    folder = tmp_path / "models" / "m"
    folder.mkdir(parents=True)
    model = folder / "m.onnx"
    model.write_bytes(b"model")
    (tmp_path / "to_models").symlink_to(tmp_path / "models")
    for out, word in [
        (folder, "holds the input"),
        (tmp_path / "models", "holds the input"),
        (tmp_path / "to_models", "holds the input"),
        (tmp_path / "to_models" / "m", "holds the input"),
        (model, "is the input"),
    ]:
        with pytest.raises(BadInputError, match=word):
            check_writable(out, protected=[model])
    # The model given through the link is protected as well.
    with pytest.raises(BadInputError, match="holds the input"):
        check_writable(folder, protected=[tmp_path / "to_models" / "m" / "m.onnx"])
    assert model.read_bytes() == b"model"
    check_writable(tmp_path / "models" / "elsewhere", protected=[model])


def test_the_working_directory_is_never_replaced(tmp_path, monkeypatch):
    out = _old_output(tmp_path)  # flcompile's own output, but the shell is inside it
    monkeypatch.chdir(out / "sub")
    for target in ("..", str(out)):
        with pytest.raises(BadInputError, match="is the working directory or holds it"):
            check_writable(target)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(BadInputError, match="is the working directory or holds it"):
        check_writable(".")
    assert _snapshot(out) == {"device.onnx": b"old device", "sub/x.txt": b"old"}
