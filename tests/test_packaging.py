"""Every Python package in the source tree is listed in pyproject, so a wheel holds it.

An editable install finds unlisted subpackages through the folder, so only a wheel (what a
user installs) would miss one; this test catches that without building a wheel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")

REPO = Path(__file__).resolve().parents[1]


def _package_names(config: dict) -> dict[str, Path]:
    """Every package under the mapped folders, by its import name."""
    dirs = config["tool"]["setuptools"]["package-dir"]
    found = {}
    for top, folder in dirs.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found[".".join([top, *rel.parts])] = init.parent
    return found


def test_every_package_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = _package_names(config)
    assert "flcompile.passes.ops" in found  # the walk reaches nested packages
    assert sorted(set(found) - listed) == []
    assert sorted(listed - set(found)) == []
