"""A cost law per op type, seconds = a + b·FLOPs, fitted by least squares to measured nodes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One measured node: its op type, FLOPs and seconds."""

    op_type: str
    flops: float
    seconds: float


@dataclass(frozen=True)
class CostLaw:
    """seconds = a_s + b_s_per_flop · FLOPs, fitted on `n` nodes."""

    a_s: float
    b_s_per_flop: float
    n: int

    def seconds(self, flops: float) -> float:
        """The predicted seconds of a node of `flops` FLOPs."""
        return self.a_s + self.b_s_per_flop * flops

    def to_json(self) -> dict:
        """The law as the profile stores it."""
        return {"a_s": self.a_s, "b_s_per_flop": self.b_s_per_flop, "n": self.n}


def fit_law(flops: Iterable[float], seconds: Iterable[float]) -> CostLaw:
    """The least-squares line through (FLOPs, seconds), with a, b ≥ 0.

    One sample, or samples that all have the same FLOPs, give a constant (their mean);
    a negative intercept or slope is refitted without it, since no node takes negative time.

    Args:
        flops: each node's FLOPs.
        seconds: each node's measured seconds.

    Returns:
        The law.
    """
    x = np.asarray(list(flops), dtype=float)
    y = np.asarray(list(seconds), dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return CostLaw(float(y.mean()), 0.0, len(x))
    b, a = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)[0]
    if a < 0:
        a, b = 0.0, float(x @ y / (x @ x))
    if b < 0:
        a, b = float(y.mean()), 0.0
    return CostLaw(float(a), float(b), len(x))


def fit_laws(samples: Iterable[Sample]) -> dict[str, CostLaw]:
    """One law per op type.

    Args:
        samples: measured nodes.

    Returns:
        Op type -> its law, sorted by op type.
    """
    by_op: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_op[s.op_type].append(s)
    return {
        op: fit_law([s.flops for s in group], [s.seconds for s in group])
        for op, group in sorted(by_op.items())
    }


def predict_s(laws: Mapping[str, CostLaw], samples: Iterable[Sample]) -> float:
    """The laws' total seconds for `samples` (an op without a law costs nothing)."""
    return sum(laws[s.op_type].seconds(s.flops) for s in samples if s.op_type in laws)
