"""What float16 sends do to accuracy: the tolerance verification allows, overflow, and argmax.

A float16 send rounds every value the device sends to 11 significant bits: each changes by
at most u = 2^-11 of itself (half an ulp), and a value beyond float16's largest finite
number, 65504, becomes ±inf. The rest of the model carries that rounding to the outputs;
docs/design.md §7 derives the tolerance below from it and from what the zoo models show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from flcompile.costs.wire import FLOAT16, FLOAT32
from flcompile.errors import BadInputError

#: float16's unit roundoff: rounding a value to float16 changes it by at most this fraction.
FLOAT16_UNIT_ROUNDOFF = 2.0**-11
#: The outputs' tolerance (rtol, and atol in units of each output's largest value) under
#: float16 sends: 8 units of roundoff, 2^-8 ≈ 3.9e-3 (docs/design.md §7).
FLOAT16_SEND_TOLERANCE = 8 * FLOAT16_UNIT_ROUNDOFF
#: The tolerance of an exact rewrite (float32 sends, and F in the tiled model always).
EXACT_TOLERANCE = 1e-5
FLOAT16_MAX = float(np.finfo(np.float16).max)


class SendOverflowError(BadInputError):
    """A float16 send overflows on the verification inputs (exit 2)."""


def default_tolerance(send_dtype: str) -> float:
    """The default rtol and atol of the outputs' comparison for plans sending `send_dtype`.

    Args:
        send_dtype: the wire dtype.

    Returns:
        1e-5 for float32 sends (the rewrite is exact up to float32 reassociation),
        FLOAT16_SEND_TOLERANCE for float16 sends.
    """
    return FLOAT16_SEND_TOLERANCE if send_dtype == FLOAT16 else EXACT_TOLERANCE


def check_overflow(sent: Mapping[str, np.ndarray], cast: Sequence[str], input_index: int) -> None:
    """Refuse a plan whose float16 sends overflow: a value beyond ±65504 turns into ±inf.

    Args:
        sent: device.onnx's outputs on one verification input, by name.
        cast: the names of the sends cast to float16.
        input_index: which verification input this is, for the message.

    Raises:
        SendOverflowError: a cast send holds an infinity (its float32 value was beyond
            float16's range).
    """
    for name in cast:
        value = sent.get(name)
        if value is not None and value.dtype == np.float16 and np.isinf(value).any():
            count = int(np.count_nonzero(np.isinf(value)))
            raise SendOverflowError(
                f"--send-dtype {FLOAT16}: sent tensor '{name}' overflows float16 on "
                f"verification input {input_index} ({count} value(s) beyond ±{FLOAT16_MAX:g})",
                hint=f"use --send-dtype {FLOAT32} (the default) for this model",
            )


def argmax_agreement(
    names: Sequence[str], got: Mapping[str, np.ndarray], ref: Mapping[str, np.ndarray]
) -> tuple[int, int]:
    """How many rows of the 2-D (batch × classes) outputs keep their argmax.

    Args:
        names: the original's outputs.
        got: edge.onnx's outputs.
        ref: the original's outputs.

    Returns:
        (rows whose argmax is unchanged, rows compared); (0, 0) when no output is a 2-D
        float tensor.
    """
    agree = rows = 0
    for name in names:
        r, g = ref.get(name), got.get(name)
        if r is None or g is None or r.ndim != 2 or g.shape != r.shape or r.shape[1] == 0:
            continue
        if not np.issubdtype(r.dtype, np.floating):
            continue
        agree += int(np.count_nonzero(r.argmax(axis=1) == g.argmax(axis=1)))
        rows += int(r.shape[0])
    return agree, rows
