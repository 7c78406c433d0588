"""Subcommands: dispatch from `flcompile`, one-line usage errors, and missing extras named."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from flcompile import cli
from flcompile.command import require_extra
from flcompile.errors import UsageError


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("command", ["serve", "run"])
def test_subcommands_have_their_own_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: flcompile {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve"], "the following arguments are required: --port"),  # no OUT is fine
        (["serve", "x.flc", "--port", "70000"], "is not a port"),
        (["run", "x.flc"], "the following arguments are required: --server"),
        (["run", "x.flc", "--server", "localhost"], "is not HOST:PORT"),
        (["run", "x.flc", "--server", "h:1", "--frames", "0"], "must be at least 1"),
    ],
)
def test_usage_errors_exit_2_in_one_line(argv: list[str], message: str, capsys) -> None:
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert message in line and line.startswith("flcompile: error: ")


def test_missing_out_exits_2(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pytriton")
    assert cli.main(["serve", str(tmp_path / "nope.flc"), "--port", "1"]) == 2
    assert "not a compiled plan" in _one_error_line(capsys)


def test_a_busy_port_is_refused_before_triton_starts(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pytriton")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = ["serve", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)]
        assert cli.main(argv) == 2
    assert f"cannot listen on 127.0.0.1:{port} (in use)" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("command", "module", "extra"),
    [("serve", "pytriton", "serve"), ("run", "tritonclient.grpc", "device")],
)
def test_a_missing_extra_names_its_install_command(
    command: str, module: str, extra: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    argv = [command, str(tmp_path), "--port" if command == "serve" else "--server"]
    argv.append("1" if command == "serve" else "127.0.0.1:1")
    assert cli.main(argv) == 2
    line = _one_error_line(capsys)
    assert f"pip install 'flcompile[{extra}]'" in line and module in line


def test_require_extra_passes_for_what_is_installed() -> None:
    require_extra("numpy", "test", "test")
    with pytest.raises(UsageError, match=r"pip install 'flcompile\[x\]'"):
        require_extra("no_such_module_for_flcompile", "x", "y")


def test_the_compile_command_is_unchanged(capsys) -> None:
    assert cli.main(["no_such_model.onnx", "--rate", "1.8"]) == 2  # still the model argument
    assert "no_such_model.onnx" in _one_error_line(capsys)
