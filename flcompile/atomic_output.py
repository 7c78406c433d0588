"""All-or-nothing output directory: write into a sibling temp dir, then rename it into place.

A failed run leaves no partial `OUT/` and never a half-written one over an earlier good one
(docs/design.md §6, §8). The rename is atomic because the temp dir lives in OUT's parent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from flcompile.errors import BadInputError

logger = logging.getLogger(__name__)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(out_dir: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Check, before any heavy work, that `out_dir` can be created or replaced.

    Args:
        out_dir: the output directory.
        overwrite: whether an existing `out_dir` may be replaced.

    Returns:
        `out_dir` as an absolute path (symlinks not resolved).

    Raises:
        BadInputError: `out_dir` is an existing file, exists while `overwrite` is False,
            has a file among its ancestors, or its nearest existing ancestor is not writable.
    """
    out = Path(os.path.abspath(os.fspath(out_dir)))
    if out.parent == out:
        raise BadInputError(f"{out}: cannot write the output to a filesystem root")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise BadInputError(
                f"{out}: exists and is not a directory",
                hint="pass -o with a directory path, or remove the file",
            )
        if not overwrite:
            raise BadInputError(
                f"{out}: output directory already exists",
                hint="remove it or choose another -o",
            )
    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise BadInputError(
            f"{out}: cannot create the output directory, {base} is a file",
            hint="pass -o with a path under a directory",
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise BadInputError(
            f"{out}: cannot create the output directory, {base} is not writable",
            hint="choose a writable -o directory",
        )
    return out


def _make_unique_dir(parent: Path, prefix: str) -> Path:
    # os.mkdir (not tempfile.mkdtemp) so the final OUT/ gets the usual umask permissions.
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise BadInputError(f"{parent}: cannot create a temporary directory for the output")


def _unused_name(parent: Path, prefix: str) -> Path:
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(4)}"
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
    raise BadInputError(f"{parent}: cannot find a free name to back up the old output")


def _make_parents(parent: Path) -> list[Path]:
    """Create `parent` and its missing ancestors; return those created, deepest first."""
    created = []
    path = parent
    while not path.exists():
        created.append(path)
        path = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(
            f"{parent}: cannot create the output's parent directory ({e.strerror})",
            hint="choose a writable -o directory",
        ) from e
    return created


def _remove_created(created: list[Path]) -> None:
    for path in created:
        with contextlib.suppress(OSError):
            path.rmdir()


def _commit(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`, replacing an existing `out` via a backup that is then deleted."""
    backup = None
    if out.exists() or out.is_symlink():
        backup = _unused_name(out.parent, f".{out.name}.old-")
        os.rename(out, backup)
    try:
        os.rename(tmp, out)
    except OSError:
        if backup is not None:
            os.rename(backup, out)
        raise
    if backup is not None:
        if backup.is_dir() and not backup.is_symlink():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            backup.unlink()


@contextlib.contextmanager
def atomic_directory(out_dir: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that becomes `out_dir` only if the block succeeds.

    The temporary directory `.{name}.tmp-XXXXXXXX` is made next to `out_dir`. On normal
    exit an existing `out_dir` is renamed to a backup, the temporary directory is renamed
    into place and the backup is deleted (restored if the rename fails). On an exception
    the temporary directory (and any parent this call created) is removed, an existing
    `out_dir` is left untouched, and the exception propagates.

    Args:
        out_dir: the final output directory.
        overwrite: whether an existing `out_dir` may be replaced.

    Yields:
        The temporary directory to write every output file into.

    Raises:
        BadInputError: `out_dir` cannot be written (checked before the block runs; see
            `check_writable`), or the final rename fails.
    """
    out = check_writable(out_dir, overwrite=overwrite)
    created = _make_parents(out.parent)
    try:
        tmp = _make_unique_dir(out.parent, f".{out.name}.tmp-")
    except BaseException:
        _remove_created(created)
        raise
    logger.debug("writing output to %s", tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise
    try:
        _commit(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise BadInputError(
            f"{out}: cannot move the finished output into place ({e.strerror or e})",
            hint="check that the directory is not in use and is writable",
        ) from e
    logger.debug("output written to %s", out)
