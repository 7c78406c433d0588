"""Which directories flcompile may replace: only its own output, never one holding an input.

Every output directory carries a marker, `.flcompile-output.json`, that names the producer and
lists every file flcompile wrote there. An existing directory counts as flcompile's output
only when the marker parses, names flcompile, and the files present are exactly the files it
lists (no file more or less, no directory besides those that hold them). A user's folder
cannot match that by accident, and a user's file added to an old output makes it the user's.

Apart from that, a directory that is, or holds, the model, its external data, an --input
file or the working directory is never replaced, whatever it looks like.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from flcompile import __version__
from flcompile.errors import BadInputError

logger = logging.getLogger(__name__)

MARKER = ".flcompile-output.json"
PRODUCER = "flcompile"


def _walk(directory: Path) -> tuple[set[str], set[str]]:
    """Relative POSIX paths of every non-directory entry, and of every subdirectory.

    Symbolic links count as files and are not followed.
    """
    files: set[str] = set()
    dirs: set[str] = set()
    pending = [directory]
    while pending:
        current = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                rel = Path(entry.path).relative_to(directory).as_posix()
                if entry.is_dir(follow_symlinks=False):
                    dirs.add(rel)
                    pending.append(Path(entry.path))
                else:
                    files.add(rel)
    return files, dirs


def _holding_dirs(files: Iterable[str]) -> set[str]:
    """Every directory (relative, below the root) that holds one of `files`."""
    return {str(parent) for f in files for parent in PurePosixPath(f).parents if str(parent) != "."}


def write_marker(directory: Path) -> None:
    """Mark `directory` as flcompile's output, listing every file now in it.

    Call it last, when every output file has been written.

    Args:
        directory: the finished output directory (not yet renamed into place).

    Raises:
        OSError: the marker cannot be written.
    """
    files, _ = _walk(directory)
    files.discard(MARKER)
    marker = {"producer": PRODUCER, "version": __version__, "files": sorted(files)}
    (directory / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _listed_files(directory: Path) -> list[str] | None:
    """The files the marker lists, or None when there is no valid flcompile marker."""
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("producer") != PRODUCER:
        return None
    files = marker.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


def is_flcompile_output(directory: Path) -> bool:
    """True when `directory` holds flcompile's output and nothing else.

    Args:
        directory: an existing directory (a symbolic link to one is never flcompile's).

    Returns:
        Whether its marker is valid and the files present are exactly those it lists.
    """
    if directory.is_symlink() or not directory.is_dir():
        return False
    listed = _listed_files(directory)
    if listed is None:
        return False
    try:
        files, dirs = _walk(directory)
    except OSError:
        return False
    files.discard(MARKER)
    return files == set(listed) and dirs <= _holding_dirs(listed)


def remove_output(directory: Path) -> bool:
    """Delete flcompile's output: the files its marker lists, the marker, then emptied dirs.

    Nothing else is deleted: a file that is not listed keeps its directory in place.

    Args:
        directory: a directory that `is_flcompile_output` accepted.

    Returns:
        True when the directory is gone, False when something kept it (it is left as is
        if it is no longer flcompile's output).
    """
    if not is_flcompile_output(directory):
        return False
    listed = _listed_files(directory) or []
    for rel in [*listed, MARKER]:
        with contextlib.suppress(OSError):  # what cannot go keeps the directory, below
            (directory / rel).unlink(missing_ok=True)
    for rel in sorted(_holding_dirs(listed), key=lambda d: d.count("/"), reverse=True):
        with contextlib.suppress(OSError):  # kept when something else is in it
            (directory / rel).rmdir()
    try:
        directory.rmdir()
    except OSError:
        return False
    return True


def _forms(path: Path) -> set[Path]:
    """`path` as written, fully resolved, and with only its folder resolved (for a link)."""
    absolute = Path(os.path.abspath(path))
    return {
        absolute,
        Path(os.path.realpath(absolute)),
        Path(os.path.realpath(absolute.parent)) / absolute.name,
    }


def _is_or_holds(out: Path, path: Path) -> bool:
    return any(o == p or o in p.parents for o in _forms(out) for p in _forms(path))


def check_protected(out: Path, protected: Iterable[str | os.PathLike]) -> None:
    """Refuse an `out` that is, or holds, one of the user's input files.

    Paths are compared as written and with symbolic links resolved, so a link to the
    input's folder is caught too.

    Args:
        out: the output directory (absolute).
        protected: the model file, its external data files and the --input file.

    Raises:
        BadInputError: `out` is one of them or a directory holding one.
    """
    for path in protected:
        path = Path(path)
        if _is_or_holds(out, path):
            what = "is" if Path(os.path.realpath(out)) == Path(os.path.realpath(path)) else "holds"
            raise BadInputError(
                f"{out} {what} the input {path}; flcompile never replaces its input",
                hint="choose another -o",
            )


def not_flcompile_output(out: Path) -> BadInputError:
    """The refusal for an existing directory that flcompile did not write."""
    return BadInputError(
        f"{out} exists and is not an flcompile output", hint="choose another -o or remove it"
    )


def check_replaceable(out: Path, protected: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse an `out` that flcompile may not create or replace.

    `out` may be missing, an empty directory, or flcompile's own output; it must not be
    or hold an input, nor hold the working directory (replacing it would pull the folder
    from under the user's shell).

    Args:
        out: the output directory (absolute).
        protected: the user's input files (see `check_protected`).

    Raises:
        BadInputError: any other case, with the reason in one line.
        OSError: `out` cannot be inspected.
    """
    check_protected(out, protected)
    if out.is_symlink():
        raise BadInputError(
            f"{out} is a symbolic link, not an flcompile output",
            hint="choose another -o or remove the link",
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInputError(
            f"{out}: exists and is not a directory",
            hint="pass -o with a directory path, or remove the file",
        )
    if any(out.iterdir()) and not is_flcompile_output(out):
        raise not_flcompile_output(out)
    try:
        cwd = Path.cwd()
    except OSError:  # the working directory was deleted: nothing to protect
        return
    if _is_or_holds(out, cwd):
        raise BadInputError(f"{out} is the working directory or holds it", hint="choose another -o")
