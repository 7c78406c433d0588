"""The files `flcompile run` writes (report, outputs, timeline): whole, and never a user's.

Each file is written beside its final name and renamed into place, so it is never seen half
written. An existing file is replaced only when flcompile wrote it, which each kind records
in the file itself: the report's `"producer": "flcompile"`, the PNG's Software text chunk,
the .npz's zip comment (docs/design.md §6's rule for OUT, applied to single files).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path

from flcompile.errors import BadInputError, user_path_errors

PRODUCER = "flcompile"
NPZ_COMMENT = b"written by flcompile"
PNG_SOFTWARE = "flcompile run"


def _is_ours(path: Path, kind: str) -> bool:
    try:
        if kind == "json":
            value = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(value, dict) and value.get("producer") == PRODUCER
        if kind == "npz":
            with zipfile.ZipFile(path) as archive:
                return archive.comment == NPZ_COMMENT
        if kind == "png":
            from PIL import Image

            with Image.open(path) as image:
                return getattr(image, "text", {}).get("Software") == PNG_SOFTWARE
    except Exception:  # unreadable or another format: not ours
        return False
    raise ValueError(f"unknown file kind {kind}")


def check_writable(path: str | os.PathLike, kind: str, option: str) -> Path:
    """Refuse, before any work, a path that holds a file flcompile did not write.

    Args:
        path: the file to write.
        kind: "json", "npz" or "png".
        option: the option that named it, for the message.

    Returns:
        The path.

    Raises:
        BadInputError: it exists and is not flcompile's, is a directory, or its folder
            does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{option} {path}: is a directory", hint=f"give {option} a file name")
    if not path.parent.is_dir():
        raise BadInputError(f"{option} {path}: no such directory {path.parent}")
    if (path.exists() or path.is_symlink()) and not _is_ours(path, kind):
        raise BadInputError(
            f"{option} {path}: exists and was not written by flcompile",
            hint=f"choose another {option} or remove the file",
        )
    return path


def write_file(path: Path, kind: str, option: str, write: Callable[[Path], None]) -> None:
    """Write a file by `write(temporary path)`, then rename it into place.

    Args:
        path: the final path (checked again just before the rename).
        kind: "json", "npz" or "png".
        option: the option that named it, for messages.
        write: writes the content to the path it is given.

    Raises:
        BadInputError: the file cannot be written, or became a user's meanwhile.
    """
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
    try:
        with user_path_errors(path, "be written", hint=f"choose another {option}"):
            write(tmp)
            if kind == "npz":
                with zipfile.ZipFile(tmp, "a") as archive:
                    archive.comment = NPZ_COMMENT
            check_writable(path, kind, option)
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
