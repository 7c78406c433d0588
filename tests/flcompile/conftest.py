"""Fixtures for the pipeline tests: real torchvision exports and small zoo models.

The real exports are read from the folder FLCOMPILE_FIXTURES names, by default
../shared/fixtures beside the clone; `python tools/export_fixtures.py DIR` writes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

from flcompile import models

REPO = Path(__file__).resolve().parents[2]
FIXTURES_ENV = "FLCOMPILE_FIXTURES"
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures"


def fixtures_folder() -> Path:
    """The folder of real exports: $FLCOMPILE_FIXTURES, else ../shared/fixtures."""
    chosen = os.environ.get(FIXTURES_ENV)
    return Path(chosen).expanduser() if chosen else DEFAULT_FIXTURES


def _fixture_path(name: str) -> Path:
    folder = fixtures_folder()
    if os.environ.get(FIXTURES_ENV) and not folder.is_dir():
        pytest.fail(f"{FIXTURES_ENV}={folder} is not a folder", pytrace=False)
    path = folder / name
    if not path.is_file():
        pytest.skip(
            f"{path} is absent: write the real exports with "
            f"`python tools/export_fixtures.py DIR` (pip install -e '.[fixtures]'), "
            f"then set {FIXTURES_ENV}=DIR"
        )
    return path


@pytest.fixture(scope="session")
def real_export():
    """A function: file name -> path of a real export, skipping when it is absent."""
    return _fixture_path


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every zoo model at width 0.25 (full resolution), written once per session."""
    folder = tmp_path_factory.mktemp("zoo")
    paths = {}
    for name in models.NAMES:
        path = folder / f"{name}.onnx"
        onnx.save_model(models.build(name, width=0.25), str(path))
        paths[name] = path
    return paths
