"""argparse value types shared by the `flcompile` command and the tools in tools/."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' must be a finite number")
    return value


def positive(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be a positive number")
    return value


def non_negative(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be zero or more")
    return value


def count(minimum: int) -> Callable[[str], int]:
    """A whole number >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"'{text}' must be at least {minimum}")
        return value

    return parse


def grid(text: str) -> tuple[int, int]:
    """A grid written RxC, e.g. 2x2 (both at least 1)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a grid like 2x2 (rows x columns)")
    return int(match[1]), int(match[2])


def port(text: str) -> int:
    """A TCP port, 1..65535."""
    value = count(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port (1..65535)")
    return value


def host_port(text: str) -> str:
    """HOST:PORT (an IPv6 host in brackets, [::1]:8001); returned as written."""
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+):(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not HOST:PORT, e.g. 127.0.0.1:8001")
    port(match[2])
    return text.strip()
