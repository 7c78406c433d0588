"""Nodes a profile measured at their exact size: their measured time, not the law's.

A law interpolates between sizes; where the profile timed a node of the same kind, FLOPs
and bytes (the nodes after F, which no tiling changes, and the untiled block), its median
time is the better prediction: a memory-bound Gemm, say, grows faster than linearly with
its weights, which no law of one line follows. A profile stores them per law key as rows
(FLOPs, bytes, seconds).
"""

from __future__ import annotations

import numpy as np

#: Sizes match when FLOPs and bytes agree to this relative tolerance (float products).
RTOL = 1e-9


def measured_or(
    table: np.ndarray | None, flops: np.ndarray, nbytes: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """Each node's measured seconds where `table` has its size, else `predicted`.

    Args:
        table: (M, 3) rows of FLOPs, bytes and seconds measured for one law key, or None.
        flops: the nodes' FLOPs (any shape).
        nbytes: their bytes (the same shape).
        predicted: the law's seconds (the same shape).

    Returns:
        The seconds, the shape of `predicted`.
    """
    if table is None or len(table) == 0:
        return predicted
    f, b = np.asarray(flops, float)[..., None], np.asarray(nbytes, float)[..., None]
    hit = np.isclose(f, table[:, 0], rtol=RTOL, atol=0.0)
    hit &= np.isclose(b, table[:, 1], rtol=RTOL, atol=0.0)
    return np.where(hit.any(axis=-1), table[hit.argmax(axis=-1), 2], predicted)
