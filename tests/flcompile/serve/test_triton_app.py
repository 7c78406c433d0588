"""The Python-backend stubs load this interpreter's libpython (a pyenv or venv Python)."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import pytest

from flcompile.serve.triton_app import fix_python_library_path


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
