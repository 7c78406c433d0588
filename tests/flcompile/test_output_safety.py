"""`-o` never destroys a user's files: through the real command, bytes checked before and after.

flcompile replaces OUT only when it is missing, empty, or an earlier flcompile output (its
marker and exactly the files it lists); it never replaces a folder holding the model, its
external data or the --input file; and an OS error on a user's path is exit 2, one line.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from tiny_models import conv_relu_model

import flcompile.compile
from flcompile.cli import main
from flcompile.errors import VerificationError
from flcompile.output_guard import MARKER, is_flcompile_output

NOT_OURS = "exists and is not an flcompile output; choose another -o or remove it"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (OUT's marker included), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def forge_marker(folder: Path) -> None:
    """Make `folder` look like flcompile's output: a marker listing the files in it."""
    files = sorted(p.name for p in folder.iterdir())
    (folder / MARKER).write_text(json.dumps({"producer": "flcompile", "files": files}))
    assert is_flcompile_output(folder)


def flcompile_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    """Run the command in-process; the exit code and stderr's lines."""
    code = main([*args, "--rate", "1", "--runs", "0", "-q"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


def assert_refused(code: int, lines: list[str], *needles: str) -> None:
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("flcompile: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def save_with_external_data(path: Path, location: str) -> Path:
    """The tiny model at `path`, its weights in the file `location` (relative to its folder)."""
    (path.parent / location).parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        conv_relu_model(),
        str(path),
        save_as_external_data=True,
        location=location,
        size_threshold=0,
    )
    assert (path.parent / location).stat().st_size > 0
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """models/m.onnx with its weights in models/m.onnx.data (external data)."""
    (tmp_path / "models").mkdir()
    return save_with_external_data(tmp_path / "models" / "m.onnx", "m.onnx.data")


def test_a_users_folder_is_refused_and_kept(model, tmp_path, capsys) -> None:
    out = tmp_path / "mydir"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    code, lines = flcompile_cli([str(model), "-o", str(out)], capsys)
    assert_refused(code, lines, f"{out} {NOT_OURS}")
    assert snapshot(out) == {"notes.txt": b"my notes"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "mydir"]


def test_dot_and_dotdot_are_refused(model, tmp_path, capsys, monkeypatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("my notes")
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    code, lines = flcompile_cli([str(model), "-o", "."], capsys)
    assert_refused(code, lines, f"{work} {NOT_OURS}")
    code, lines = flcompile_cli([str(model), "-o", ".."], capsys)
    assert_refused(code, lines, str(tmp_path), "holds the input")
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "work"]


@pytest.mark.parametrize("target", ["models", ".", "models/../models/"])
def test_the_models_folder_and_its_ancestors_are_refused(
    model, tmp_path, capsys, monkeypatch, target
) -> None:
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, lines = flcompile_cli(["models/m.onnx", "-o", target], capsys)
    assert_refused(code, lines, "holds the input models/m.onnx", "choose another -o")
    assert snapshot(tmp_path) == before


def test_a_folder_that_looks_like_an_output_but_holds_the_input_is_refused(
    model, tmp_path, capsys
) -> None:
    """Even a forged marker listing the model does not make its folder replaceable."""
    folder = model.parent
    forge_marker(folder)
    before = snapshot(folder)
    code, lines = flcompile_cli([str(model), "-o", str(folder)], capsys)
    assert_refused(code, lines, "holds the input")
    assert snapshot(folder) == before


def test_a_link_to_the_models_folder_is_refused(model, tmp_path, capsys) -> None:
    link = tmp_path / "link"
    link.symlink_to(model.parent, target_is_directory=True)
    before = snapshot(model.parent)
    code, lines = flcompile_cli([str(model), "-o", str(link)], capsys)
    assert_refused(code, lines, f"{link} holds the input")
    assert snapshot(model.parent) == before and link.is_symlink()
    # The model named through the link: its real folder is protected too.
    code, lines = flcompile_cli([str(link / "m.onnx"), "-o", str(model.parent)], capsys)
    assert_refused(code, lines, "holds the input")
    assert snapshot(model.parent) == before


def test_a_folder_holding_only_the_external_data_is_refused(tmp_path, capsys, monkeypatch) -> None:
    """Refused as soon as the model names its data file, before any analysis."""
    monkeypatch.setattr(flcompile.compile, "analyse", lambda *a: pytest.fail("analysed"))
    path = save_with_external_data(tmp_path / "m.onnx", "weights/m.data")
    forge_marker(tmp_path / "weights")  # so that only the input rule can refuse it
    before = snapshot(tmp_path)
    code, lines = flcompile_cli([str(path), "-o", str(tmp_path / "weights")], capsys)
    assert_refused(code, lines, "holds the input", "m.data")
    assert snapshot(tmp_path) == before


def test_the_folder_of_the_input_npy_is_refused(model, tmp_path, capsys) -> None:
    data = tmp_path / "inputs"
    data.mkdir()
    np.save(data / "x.npy", np.zeros((1, 2, 8, 8), np.float32))
    before = snapshot(tmp_path)
    for out in (data, data / "x.npy"):
        code, lines = flcompile_cli(
            [str(model), "--input", str(data / "x.npy"), "-o", str(out)], capsys
        )
        assert_refused(code, lines, "the input", "x.npy")
    assert snapshot(tmp_path) == before


def test_rerun_replaces_its_own_output_but_not_an_added_file(model, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    stages = ["--grid", "2x2", "--fuse-at", "r", "--emit-stages"]
    code, _ = flcompile_cli([str(model), "-o", str(out), *stages], capsys)
    assert code == 0 and is_flcompile_output(out) and (out / "stages").is_dir()
    first = snapshot(out)
    (out / "plan.json").write_text("stale")  # changing a listed file keeps it flcompile's
    code, _ = flcompile_cli([str(model), "-o", str(out), *stages[:-1]], capsys)
    assert code == 0 and is_flcompile_output(out)
    assert not (out / "stages").exists(), "the earlier output is replaced, not merged"
    assert snapshot(out)["plan.json"] != b"stale"
    assert snapshot(out)["device.onnx"] == first["device.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "out"]
    (out / "notes.txt").write_text("my notes")
    before = snapshot(out)
    code, lines = flcompile_cli([str(model), "-o", str(out)], capsys)
    assert_refused(code, lines, f"{out} {NOT_OURS}")
    assert snapshot(out) == before


def test_an_empty_folder_becomes_the_output(model, tmp_path, capsys) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    code, _ = flcompile_cli([str(model), "-o", str(out)], capsys)
    assert code == 0 and is_flcompile_output(out)
    assert {"device.onnx", "edge.onnx", "plan.json"} <= set(snapshot(out))


def _fail_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    real = flcompile.compile.verify_split_inputs

    def failing(*args, **kwargs):
        result = real(*args, **kwargs)
        compared = tuple(dataclasses.replace(c, passed=False) for c in result.compared)
        return dataclasses.replace(result, passed=False, compared=compared)

    monkeypatch.setattr(flcompile.compile, "verify_split_inputs", failing)


def test_debug_keeps_failed_models_only_where_it_may(model, tmp_path, monkeypatch) -> None:
    _fail_verification(monkeypatch)
    out = tmp_path / "out"
    failed = tmp_path / "out.failed"
    failed.mkdir()
    (failed / "notes.txt").write_text("my notes")
    args = [str(model), "--rate", "1", "--runs", "0", "-q", "-o", str(out), "--debug"]
    with pytest.raises(VerificationError):
        main(args)
    assert snapshot(failed) == {"notes.txt": b"my notes"}
    assert not out.exists()
    (failed / "notes.txt").unlink()  # an empty folder may take the failed models
    with pytest.raises(VerificationError):
        main(args)
    assert is_flcompile_output(failed) and "edge.onnx" in snapshot(failed)
    with pytest.raises(VerificationError):  # and an earlier OUT.failed is replaced
        main(args)
    assert is_flcompile_output(failed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "out.failed"]


@pytest.mark.parametrize("out", ["/proc/nope/out", "/proc/nope", "/sys/nope"])
def test_system_folders_are_the_users_error(model, capsys, out) -> None:
    root = "/" + out.split("/")[1]
    if not os.path.isdir(root) or os.path.exists(root + "/nope"):
        pytest.skip(f"{root} is not a system folder without 'nope' here")
    code, lines = flcompile_cli([str(model), "-o", out], capsys)
    assert_refused(code, lines, out, "cannot create the output directory (")


def test_a_full_disk_is_the_users_error(model, tmp_path, capsys, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(flcompile.compile, "save_model", full)
    code, lines = flcompile_cli([str(model), "-o", str(tmp_path / "out")], capsys)
    assert_refused(code, lines, "out: cannot write the output (No space left on device)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_names_too_long_are_the_users_error(model, tmp_path, capsys) -> None:
    long = tmp_path / ("a" * 300)
    code, lines = flcompile_cli([str(model), "-o", str(long)], capsys)
    assert_refused(code, lines, "(File name too long)")
    code, lines = flcompile_cli([str(long / "m.onnx"), "-o", str(tmp_path / "out")], capsys)
    assert_refused(code, lines, "cannot be read (File name too long)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
