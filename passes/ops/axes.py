"""How an output region of a local op maps to an input region, one spatial axis at a time.

Regions are half-open `Interval`s in the unpadded coordinates of each tensor (docs/design.md
§2). An axis map's `backward(out, size)` gives the input interval a tile copy reads, the
(begin, end) pads it needs, and the output interval it then computes (which may be larger
than asked, as for `AxisRepeat`; the consumer crops).
"""

from __future__ import annotations

from dataclasses import dataclass


class EmptyRegionError(ValueError):
    """A tile reads no real pixel of some input (its window lies wholly in padding)."""


@dataclass(frozen=True, order=True)
class Interval:
    """A half-open interval [start, stop) of pixels along one axis."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        """Number of pixels."""
        return self.stop - self.start

    def union(self, other: Interval | None) -> Interval:
        """The bounding interval of both."""
        if other is None:
            return self
        return Interval(min(self.start, other.start), max(self.stop, other.stop))


AxisStep = tuple[Interval, tuple[int, int], Interval]


@dataclass(frozen=True)
class AxisWindow:
    """The window of one spatial axis (the identity by default, as for pointwise ops).

    Output o reads input [o·s − p_begin, o·s − p_begin + d·(k−1) + 1).

    `pad_end` is the op's original trailing pad, kept for ceil_mode and count_include_pad.
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad_begin: int = 0
    pad_end: int = 0

    @property
    def span(self) -> int:
        """d·(k − 1) + 1, the input extent of one output pixel."""
        return self.dilation * (self.kernel - 1) + 1

    def output_size(self, size: int, ceil_mode: bool = False) -> int:
        """The output length over an input of `size`, by the ONNX rule that onnxruntime follows.

        Under ceil_mode the last window may run past the end pad, but a window that would
        start in the end padding is dropped.

        Args:
            size: the input's length along this axis.
            ceil_mode: the op's ceil_mode.

        Returns:
            The number of windows.
        """
        room = size + self.pad_begin + self.pad_end - self.span
        if not ceil_mode:
            return room // self.stride + 1
        out = -(-room // self.stride) + 1
        if (out - 1) * self.stride >= size + self.pad_begin:
            out -= 1
        return out

    def backward(self, out: Interval, size: int) -> AxisStep:
        """The backward step of docs/design.md §2 along this axis.

        Output [o0, o1) wants input [o0·s − p_begin, (o1 − 1)·s − p_begin + span); the real
        input is that ∩ [0, size) and the difference becomes the tile's own pads.

        Args:
            out: the output interval to compute.
            size: the input's size along this axis.

        Returns:
            (the real input interval, the tile's (begin, end) pads, `out`).

        Raises:
            EmptyRegionError: the wanted input lies wholly in the padding.
        """
        wanted_start = out.start * self.stride - self.pad_begin
        wanted_stop = (out.stop - 1) * self.stride - self.pad_begin + self.span
        real = Interval(max(wanted_start, 0), min(wanted_stop, size))
        if real.size <= 0:
            raise EmptyRegionError(f"output {out} reads no input pixel")
        return real, (real.start - wanted_start, wanted_stop - real.stop), out


@dataclass(frozen=True)
class AxisRepeat:
    """Output pixel o reads input pixel ⌊o / factor⌋ (DepthToSpace, nearest upsampling)."""

    factor: int

    def backward(self, out: Interval, size: int) -> AxisStep:
        """Input [⌊o0/f⌋, ⌈o1/f⌉), which computes the whole output [⌊o0/f⌋·f, ⌈o1/f⌉·f).

        Args:
            out: the output interval wanted.
            size: the input's size along this axis (every read lies within it).

        Returns:
            (the input interval, no pads, the output interval the tile copy computes).
        """
        f = self.factor
        read = Interval(out.start // f, -(-out.stop // f))
        return read, (0, 0), Interval(read.start * f, read.stop * f)
