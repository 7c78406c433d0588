"""What every flcompile command shares: one-line usage errors, and errors mapped to exit codes.

Exit codes: 0 ok, 2 bad usage or input, 3 verification failed, 4 internal error (a bug).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from flcompile.errors import FlCompileError, InternalError, UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see {self.prog} --help")


def run_guarded(body: Callable[[], int], *, debug: bool, interrupted: str) -> int:
    """Run a command's body; every failure becomes one line on stderr and its exit code.

    Args:
        body: the command; returns its exit code.
        debug: re-raise instead, for a traceback.
        interrupted: what to say after Ctrl-C (exit 130).

    Returns:
        The exit code.
    """
    try:
        return body()
    except FlCompileError as e:
        if debug:
            raise
        print(f"flcompile: error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"flcompile: {interrupted}", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: one line, exit 4, traceback only with --debug
        if debug:
            raise
        error = InternalError(f"{type(e).__name__}: {e}")
        print(f"flcompile: error: {error.one_line()}", file=sys.stderr)
        return error.exit_code


def require_extra(module: str, extra: str, command: str) -> None:
    """Import `module`, or fail with the pip command that installs it.

    Args:
        module: the module the command needs, e.g. "pytriton".
        extra: flcompile's extra that provides it, e.g. "serve".
        command: the command that needs it, for the message.

    Raises:
        UsageError: the module cannot be imported (exit 2).
    """
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise UsageError(
            f"flcompile {command} needs {module}, which is not installed",
            hint=f"pip install 'flcompile[{extra}]'",
        ) from e
