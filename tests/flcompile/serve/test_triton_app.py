"""EdgeServer without a server: the libpython path for the stubs, and retried starts."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import pytest

from flcompile.errors import BadInputError
from flcompile.serve.triton_app import EdgeServer, ServeOptions, fix_python_library_path


def test_ld_library_path_starts_with_the_interpreters_libdir(monkeypatch) -> None:
    libdir = sysconfig.get_config_var("LIBDIR")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not libdir or not (Path(libdir) / f"libpython{version}.so.1.0").exists():
        pytest.skip("this interpreter has no shared libpython")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/other/lib")
    fix_python_library_path()
    assert os.environ["LD_LIBRARY_PATH"] == f"{libdir}:/opt/other/lib"
    fix_python_library_path()  # once is enough
    assert os.environ["LD_LIBRARY_PATH"] == f"{libdir}:/opt/other/lib"
    monkeypatch.delenv("LD_LIBRARY_PATH")
    fix_python_library_path()
    assert os.environ["LD_LIBRARY_PATH"] == libdir


def _server() -> EdgeServer:
    options = ServeOptions("127.0.0.1", 1, None, 2, 1, 1.0, None)
    return EdgeServer([], options)


def test_a_start_lost_to_pytritons_instance_race_is_retried(monkeypatch) -> None:
    attempts = []

    def launch(self) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("Model initialize error: get_config_from_handshake_server: refused")

    monkeypatch.setattr(EdgeServer, "_launch", launch)
    server = _server()
    server.start()
    server.stop()
    assert len(attempts) == 2


def test_other_start_failures_are_one_error(monkeypatch) -> None:
    attempts = []

    def launch(self) -> None:
        attempts.append(1)
        raise TimeoutError("Triton Inference Server is not ready after timeout.")

    monkeypatch.setattr(EdgeServer, "_launch", launch)
    with pytest.raises(BadInputError, match=r"Triton did not start .*not ready"):
        _server().start()
    assert len(attempts) == 1
