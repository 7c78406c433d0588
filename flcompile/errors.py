"""The error types of flcompile: user errors (`FlCompileError`) apart from internal bugs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


class FlCompileError(Exception):
    """Root of every user-facing failure; the CLI prints it as one line.

    Attributes:
        exit_code: the process exit code the CLI uses for this kind of error.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message and its hint, joined into a single line."""
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text = f"{text}; {self.hint.strip()}"
        return text


class BadInputError(FlCompileError):
    """The model file, its inputs or the options cannot be used (exit 2)."""

    exit_code = 2


class UsageError(BadInputError):
    """A command-line option is missing, malformed or out of range (exit 2)."""


class UnsupportedModelError(BadInputError):
    """The model is valid ONNX but flcompile cannot plan for it (exit 2)."""


class SolverLimitError(UsageError):
    """A solver was asked for a problem larger than it will take on (exit 2)."""


class VerificationError(FlCompileError):
    """The rewritten models do not compute what the original computes (exit 3)."""

    exit_code = 3


class InternalError(FlCompileError):
    """A broken invariant inside flcompile: a bug, never the user's fault (exit 4)."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(
            message,
            hint=hint or "this is a bug in flcompile; rerun with --debug and report it",
        )


@contextlib.contextmanager
def user_path_errors(
    path: str | os.PathLike, action: str, *, hint: str | None = None
) -> Iterator[None]:
    """Turn an OSError raised in the block into a one-line BadInputError naming `path`.

    A file system failure on a path the user gave (the model, its data, --input, -o) is
    the user's to fix, never a bug: "PATH: cannot ACTION (OS reason)", exit 2.

    Args:
        path: the user's path the block works on.
        action: what the block does, e.g. "write the output".
        hint: what the user can do about it.

    Raises:
        BadInputError: the block raised an OSError.
    """
    try:
        yield
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise BadInputError(f"{os.fspath(path)}: cannot {action} ({reason})", hint=hint) from e
