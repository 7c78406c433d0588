"""Nodes a profile measured at their exact size: their measured time, not the law's.

A law interpolates between sizes; where the profile timed a node of the same kind, FLOPs
and bytes (the nodes after F, which no tiling changes, and the untiled block), its median
time is the better prediction: a memory-bound Gemm, say, grows faster than linearly with
its weights, which no law of one line follows. A profile stores them per law key as rows
(FLOPs, bytes, seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Sizes match when FLOPs and bytes agree to this relative tolerance (float products).
RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class MeasuredSizes:
    """Every measured size of a profile, all law keys in one table (one numpy pass per
    lookup, however many keys).

    Attributes:
        index: law key -> its id.
        key_ids: (M,) each row's key id.
        rows: (M, 3) each row's FLOPs, bytes and seconds.
    """

    index: dict[str, int]
    key_ids: np.ndarray
    rows: np.ndarray

    @classmethod
    def of(cls, tables: Mapping[str, np.ndarray]) -> MeasuredSizes:
        """The sizes of law key -> (M, 3) rows of FLOPs, bytes and seconds."""
        index = {key: i for i, key in enumerate(tables)}
        rows = [np.asarray(t, float).reshape(-1, 3) for t in tables.values()]
        ids = [np.full(len(r), index[k]) for k, r in zip(tables, rows, strict=True)]
        return cls(
            index,
            np.concatenate(ids) if ids else np.zeros(0, int),
            np.concatenate(rows) if rows else np.zeros((0, 3)),
        )

    def measured_or(
        self, keys: tuple[str, ...], flops: np.ndarray, nbytes: np.ndarray, predicted: np.ndarray
    ) -> np.ndarray:
        """Each node's measured seconds where its key has its size, else `predicted`.

        Args:
            keys: (L,) the nodes' law keys.
            flops: (..., L) their FLOPs.
            nbytes: (..., L) their bytes.
            predicted: (..., L) the law's seconds.

        Returns:
            The seconds, the shape of `predicted`.
        """
        if not len(self.rows):
            return predicted
        col_ids = np.array([self.index.get(k, -1) for k in keys])
        hit = col_ids[:, None] == self.key_ids[None, :]  # (L, M)
        for value, column in ((flops, 0), (nbytes, 1)):
            target = self.rows[:, column]
            hit = hit & (np.abs(np.asarray(value, float)[..., None] - target) <= RTOL * target)
        return np.where(hit.any(axis=-1), self.rows[hit.argmax(axis=-1), 2], predicted)
