"""What a sent tensor weighs on the link: the wire dtype of `--send-dtype` (docs/design.md §4).

One place decides which tensors the device casts before it sends them and what each element
then costs on the link: under float16 a float32 tensor travels as float16 (2 bytes an element),
and every other tensor (float16, float64, integers) travels as it is. The costs (`tiles`,
`untiled`) and the emitted Casts (`flcompile.emit`) both ask `wire_dtype`.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.costs.flops import tensor_bytes

FLOAT32 = "float32"
FLOAT16 = "float16"
SEND_DTYPES = (FLOAT32, FLOAT16)
DEFAULT_SEND_DTYPE = FLOAT32


def wire_dtype(dtype: np.dtype | type, send_dtype: str) -> np.dtype:
    """The dtype a tensor of `dtype` travels as under `send_dtype`.

    Args:
        dtype: the tensor's own dtype.
        send_dtype: one of SEND_DTYPES.

    Returns:
        float16 for a float32 tensor under "float16", else the tensor's own dtype.

    Raises:
        ValueError: an unknown send dtype (the CLI checks it first).
    """
    if send_dtype not in SEND_DTYPES:
        raise ValueError(f"unknown send dtype {send_dtype!r}; choose one of {SEND_DTYPES}")
    own = np.dtype(dtype)
    return np.dtype(np.float16) if send_dtype == FLOAT16 and own == np.float32 else own


def wire_itemsize(dtype: np.dtype | type, send_dtype: str) -> int:
    """Bytes one element of a tensor of `dtype` costs on the link under `send_dtype`."""
    return wire_dtype(dtype, send_dtype).itemsize


def wire_bytes(tensor: gs.Tensor, send_dtype: str) -> int | None:
    """Bytes a tensor with a static shape costs on the link, or None when its shape or dtype
    is unknown."""
    native = tensor_bytes(tensor)
    if native is None:
        return None
    own = np.dtype(tensor.dtype)
    return native // own.itemsize * wire_itemsize(own, send_dtype)
