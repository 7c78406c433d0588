"""Fixtures for the pipeline tests: the real exports in ../shared/fixtures and small zoo models."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from flcompile import models

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"


def _fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real exports live in ../shared/fixtures beside a clone")
    return path


@pytest.fixture(scope="session")
def real_export():
    """A function: file name -> path of a real export, skipping when ../shared is absent."""
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
