"""Numbers in words for the console: milliseconds, byte sizes, tensor shapes."""

from __future__ import annotations

from collections.abc import Iterable


def ms(seconds: float | None) -> str:
    """Seconds as "12.34 ms", or "-" for None."""
    return "-" if seconds is None else f"{seconds * 1e3:.2f} ms"


def size(n: float) -> str:
    """A byte count as "512 B", "1.5 KB", "245.3 MB" (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def shape(dims: Iterable) -> str:
    """A shape as "1x3x224x224"."""
    return "x".join(str(d) for d in dims)
