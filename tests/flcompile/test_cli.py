"""The command line: one clean line and the right exit code for every failure, nothing written.

Each case runs `python -m flcompile` as a user would and checks the exit code, that stderr is
exactly one line without a traceback, and that no output directory (or temp dir) is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from flcompile import models
from flcompile.cli import main
from flcompile.summary import written_line


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flcompile", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_here(
    *args: str, cwd: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess:
    """`flcompile ARGS` in this process (fast; the exit code and output are the command's)."""
    monkeypatch.chdir(cwd)
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def assert_clean_failure(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("flcompile: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m") / "tiny.onnx"
    onnx.save_model(models.build("squeezenet", width=0.25, size=64), str(path))
    return path


def test_main_job_writes_every_file_and_a_summary(tiny_model: Path, tmp_path: Path) -> None:
    proc = run(str(tiny_model), "--rate", "1.8", "-o", "out", "--runs", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert {"device.onnx", "edge.onnx", "plan.json", "timeline.png"} <= set(leftovers(out))
    assert "tiled.onnx" not in leftovers(out), "tiled.onnx is written only with --emit-tiled"
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert f"wrote      {written_line('out', sizes)}\n" in proc.stdout
    plan = json.loads((out / "plan.json").read_text())
    assert plan["schema"] == 1
    assert plan["verify"]["passed"] and plan["measured"]["runs"] == 2
    for word in ("predicted", "verify", "passed", "measured", "local-only", "NFL"):
        assert word in proc.stdout
    # edge.onnx against the original at the same, explicit thread count, and what that means.
    measured = plan["measured"]
    ratio = measured["edge_s"] / measured["original_edge_threads_s"]
    edge_threads = f"at {measured['edge_threads']} thread"
    assert edge_threads in proc.stdout and f"edge/original {ratio:.2f}x" in proc.stdout
    assert "not the predicted latency" in proc.stdout
    assert leftovers(tmp_path) == ["out"], "no temp dir may be left beside OUT"


def test_emit_stages_writes_runnable_stage_models(tiny_model: Path, tmp_path: Path) -> None:
    proc = run(
        str(tiny_model),
        "--rate",
        "1.8",
        "-o",
        "out",
        "--grid",
        "2x2",
        "--emit-stages",
        "--runs",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    stages = tmp_path / "out" / "stages"
    index = json.loads((stages / "stages.json").read_text())
    assert len(index["paths"]) == 4
    assert index["fuse"]["model"] == "edge_fuse.onnx" and (stages / "edge_fuse.onnx").exists()
    assert sorted(index["run_order"]) == [0, 1, 2, 3]
    for entry in index["paths"]:
        onnx.checker.check_model(str(stages / entry["device"]), full_check=True)


def test_zoo_name_is_accepted(tmp_path: Path) -> None:
    proc = run(
        "squeezenet",
        "--paper",
        "--grid",
        "1x2",
        "--fuse-at",
        "pool1",
        "-o",
        "o",
        "--runs",
        "0",
        "-q",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    plan = json.loads((tmp_path / "o" / "plan.json").read_text())
    assert plan["cost"]["edge_concurrency"] == 0
    assert plan["link"]["shannon"] is not None
    assert plan["fused"]["tensor"] == "pool1"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rate", "0"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--rate", "nan"], "--rate"),
        ([], "no link rate"),
        (["--rate", "1", "--bandwidth-hz", "5e6"], "either --rate"),
        (["--rate", "1", "--grid", "2by2"], "--grid"),
        (["--rate", "1", "--grid", "0x2"], "--grid"),
        (["--rate", "1", "--solver", "magic"], "--solver"),
        (["--rate", "1", "--input-shape", "1x3xHx224"], "--input-shape"),
        (["--rate", "1", "--runs", "-1"], "--runs"),
        (["--rate", "1", "--fuse-at", "no_such_tensor"], "no_such_tensor"),
        (["--rate", "1", "--grid", "64x64", "--fuse-at", "pool1"], "larger than F"),
        (["--rate", "1", "--solver", "nfl", "--grid", "2x2"], "--solver nfl"),
    ],
)
def test_bad_options_exit_2(
    tiny_model: Path, tmp_path: Path, args: list[str], needle: str, capsys, monkeypatch
) -> None:
    proc = run_here(
        str(tiny_model), *args, "-o", "out", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert_clean_failure(proc, 2, needle)
    assert leftovers(tmp_path) == []


def test_bad_files_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\x01not a protobuf at all" * 50)
    (tmp_path / "empty.onnx").write_bytes(b"")
    good = models.build("squeezenet", width=0.25, size=64).SerializeToString()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 3])
    cases = {
        "missing.onnx": "no such file",
        "garbage.onnx": "garbage.onnx",
        "empty.onnx": "empty.onnx",
        "truncated.onnx": "truncated.onnx",
        "no_such_zoo_model": "no_such_zoo_model",
    }
    for name, needle in cases.items():
        proc = run_here(
            name, "--rate", "1.8", "-o", "out", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
        )
        assert_clean_failure(proc, 2, needle)
        assert not (tmp_path / "out").exists()


def test_dynamic_hw_needs_input_shape(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1])
    relu = helper.make_node("Relu", ["c"], ["r"])
    pool = helper.make_node("GlobalAveragePool", ["r"], ["y"])
    graph = helper.make_graph([conv, relu, pool], "dyn", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(tmp_path / "dyn.onnx"))
    proc = run("dyn.onnx", "--rate", "1.8", "-o", "out", cwd=tmp_path)
    assert_clean_failure(proc, 2, "dynamic", "--input-shape")
    assert not (tmp_path / "out").exists()
    proc = run(
        "dyn.onnx",
        "--rate",
        "1.8",
        "-o",
        "out",
        "--input-shape",
        "x:1x3x20x20",
        "--runs",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr


def test_failure_keeps_an_earlier_good_output(
    tiny_model: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    good = run(str(tiny_model), "--rate", "1.8", "-o", "out", "--runs", "0", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    bad = run_here(
        str(tiny_model),
        "--rate",
        "1.8",
        "-o",
        "out",
        "--fuse-at",
        "nope",
        cwd=tmp_path,
        capsys=capsys,
        monkeypatch=monkeypatch,
    )
    assert_clean_failure(bad, 2, "nope")
    after = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    assert after == before
    assert leftovers(tmp_path) == ["out"]


def test_unwritable_output_dir_exits_2(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    proc = run(str(tiny_model), "--rate", "1.8", "-o", "a_file/out", cwd=tmp_path)
    assert_clean_failure(proc, 2, "a_file")
