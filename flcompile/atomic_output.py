"""All-or-nothing output directory: write into a sibling temp dir, then rename it into place.

A failed run leaves no partial `OUT/` and never a half-written one over an earlier good one
(docs/design.md §6, §8). The rename is atomic because the temp dir lives in OUT's parent.
Only a missing or empty OUT, or one that flcompile wrote, is ever replaced (see `output_guard`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from flcompile.errors import BadInputError, user_path_errors
from flcompile.output_guard import (
    check_replaceable,
    is_flcompile_output,
    not_flcompile_output,
    remove_output,
    write_marker,
)

logger = logging.getLogger(__name__)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = True,
    protected: Iterable[str | os.PathLike] = (),
) -> Path:
    """Check, before any heavy work, that `out_dir` can be created or replaced.

    Besides the checks of `output_guard.check_replaceable`, a directory is created and
    removed beside `out_dir`, as the temporary output will be, so that a path the system
    refuses (/proc, a read-only mount, a name too long) fails now rather than at the end.

    Args:
        out_dir: the output directory.
        overwrite: whether an existing `out_dir` may be replaced.
        protected: the user's input files, never to be replaced or held by `out_dir`.

    Returns:
        `out_dir` as an absolute path (symlinks not resolved).

    Raises:
        BadInputError: `out_dir` is a file, a symbolic link, a directory that flcompile
            did not write, is or holds an input, exists while `overwrite` is False, has a
            file among its ancestors, or cannot be created.
    """
    out = Path(os.path.abspath(os.fspath(out_dir)))
    if out.parent == out:
        raise BadInputError(f"{out}: cannot write the output to a filesystem root")
    with user_path_errors(out, "use it as the output directory", hint="choose another -o"):
        check_replaceable(out, protected)
        if out.exists() and not overwrite:
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
    with _creating(out):
        _make_unique_dir(base, f".{out.name}.tmp-").rmdir()
    return out


def _creating(out: Path) -> contextlib.AbstractContextManager[None]:
    return user_path_errors(
        out, "create the output directory", hint="choose a writable -o directory"
    )


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


def _make_parents(out: Path) -> list[Path]:
    """Create `out`'s parent and its missing ancestors; return those created, deepest first."""
    created = []
    parent = path = out.parent
    while not path.exists():
        created.append(path)
        path = path.parent
    with _creating(out):
        parent.mkdir(parents=True, exist_ok=True)
    return created


def _remove_created(created: list[Path]) -> None:
    for path in created:
        with contextlib.suppress(OSError):
            path.rmdir()


def _commit(tmp: Path, out: Path, protected: Iterable[str | os.PathLike]) -> None:
    """Rename `tmp` to `out`. An earlier output is moved to a backup first, then deleted.

    `out` is checked again first: it may have changed while the output was being made.
    Renaming onto a missing or empty `out` fails by itself if `out` filled up meanwhile.
    """
    check_replaceable(out, protected)
    if not out.exists() or not any(out.iterdir()):
        os.rename(tmp, out)
        return
    backup = _unused_name(out.parent, f".{out.name}.old-")
    os.rename(out, backup)
    if not is_flcompile_output(backup):  # a file was added since the check: give it back
        os.rename(backup, out)
        raise not_flcompile_output(out)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(backup, out)
        raise
    if not remove_output(backup):
        logger.warning("%s: the earlier output was kept; files were added to it", backup)


@contextlib.contextmanager
def atomic_directory(
    out_dir: str | os.PathLike,
    *,
    overwrite: bool = True,
    protected: Iterable[str | os.PathLike] = (),
) -> Iterator[Path]:
    """Yield a temporary directory that becomes `out_dir` only if the block succeeds.

    The temporary directory `.{name}.tmp-XXXXXXXX` is made next to `out_dir`. On normal
    exit the marker of `output_guard` is written into it, and it is renamed into place; an
    earlier flcompile output there is moved aside and then deleted (restored if the rename
    fails). On an exception the temporary directory (and any parent this call created) is
    removed, an existing `out_dir` is left untouched, and the exception propagates.

    Args:
        out_dir: the final output directory.
        overwrite: whether an existing `out_dir` may be replaced.
        protected: the user's input files, never to be replaced or held by `out_dir`.

    Yields:
        The temporary directory to write every output file into.

    Raises:
        BadInputError: `out_dir` may not or cannot be written (checked before the block
            runs, see `check_writable`, and again before the rename), or the rename fails.
    """
    protected = tuple(protected)
    out = check_writable(out_dir, overwrite=overwrite, protected=protected)
    created = _make_parents(out)
    try:
        with _creating(out):
            tmp = _make_unique_dir(out.parent, f".{out.name}.tmp-")
    except BaseException:
        _remove_created(created)
        raise
    logger.debug("writing output to %s", tmp)
    try:
        yield tmp
        with user_path_errors(out, "write the output", hint="check the free space"):
            write_marker(tmp)
        with user_path_errors(
            out,
            "move the finished output into place",
            hint="check that the directory is not in use and is writable",
        ):
            _commit(tmp, out, protected)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_created(created)
        raise
    logger.debug("output written to %s", out)
