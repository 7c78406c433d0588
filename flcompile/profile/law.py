"""A cost law per node kind, seconds = a + b·FLOPs + c·bytes, fitted to measured nodes.

A node's kind is its law key (`flcompile.costs.node_key`): the op type, with the kernel
size for windowed ops ("Conv 3x3"), since a 1×1 and an 11×11 convolution run at different
speeds per FLOP. Laws are fitted per key and per op type; a node is predicted by its key's
law, else its op type's, else the overall law (`resolve_law`). Bytes (activations read and
written) are what memory-bound nodes cost: pooling, ReLU, and the Slice and Concat that
tiling adds, which compute no FLOPs.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls

from flcompile.costs.measured_sizes import MeasuredSizes
from flcompile.costs.node_cost import NodeWork
from flcompile.costs.node_key import resolve_law
from flcompile.costs.profiled import price_nodes

#: onnxruntime's profiler counts whole microseconds: a shorter time is relative to this.
RESOLUTION_S = 1e-6
#: Relative residuals beyond this weigh less than squared (soft L1): a node timed while
#: other work ran on the machine must not pull its law.
ROBUST_SCALE = 0.1


@dataclass(frozen=True)
class Sample:
    """One measured node.

    Attributes:
        op_type: its op type.
        flops: its FLOPs (`flcompile.costs.flops`).
        seconds: its measured kernel time.
        nbytes: the activation bytes it reads and writes (constants left out).
        key: its law key ("Conv 3x3"); None: the op type.
    """

    op_type: str
    flops: float
    seconds: float
    nbytes: float = 0.0
    key: str | None = None

    @property
    def law_key(self) -> str:
        """The key its law is fitted and looked up under."""
        return self.key or self.op_type


@dataclass(frozen=True)
class CostLaw:
    """seconds = a_s + b_s_per_flop · FLOPs + c_s_per_byte · bytes, fitted on `n` nodes."""

    a_s: float
    b_s_per_flop: float
    n: int
    c_s_per_byte: float = 0.0

    def seconds(self, flops: float | np.ndarray, nbytes: float | np.ndarray = 0.0):
        """The predicted seconds of a node (elementwise over arrays)."""
        return self.a_s + self.b_s_per_flop * flops + self.c_s_per_byte * nbytes

    def to_json(self) -> dict:
        """The law as the profile stores it."""
        return {
            "a_s": self.a_s,
            "b_s_per_flop": self.b_s_per_flop,
            "c_s_per_byte": self.c_s_per_byte,
            "n": self.n,
        }


def fit_law(
    flops: Iterable[float], seconds: Iterable[float], nbytes: Iterable[float] | None = None
) -> CostLaw:
    """The non-negative, robust least-squares law through the samples, in relative terms.

    Each sample's residual is divided by its seconds, so that small tiles weigh as much as
    the whole node (a plan is made of tiles), and residuals beyond `ROBUST_SCALE` count
    less than squared (soft L1, from the plain fit). a, b and c are never negative (no node
    takes negative time); a feature that does not vary is left out, and samples all of one
    size give a law proportional to their size (`_proportional`).

    Args:
        flops: each node's FLOPs.
        seconds: each node's measured seconds.
        nbytes: each node's activation bytes, or None for a FLOPs-only law.

    Returns:
        The law.
    """
    x = np.asarray(list(flops), dtype=float)
    y = np.asarray(list(seconds), dtype=float)
    z = np.zeros_like(x) if nbytes is None else np.asarray(list(nbytes), dtype=float)
    features = [np.ones_like(x), x, z]
    used = [0] + [i for i in (1, 2) if len(x) > 1 and np.ptp(features[i]) > 0]
    if used == [0]:
        return _proportional(x, y, z)
    weight = 1.0 / np.maximum(y, RESOLUTION_S)
    scale = np.array([features[i].max() for i in used])
    matrix = np.stack([features[i] for i in used], axis=1) / scale * weight[:, None]
    target = y * weight
    start = np.maximum(nnls(matrix, target)[0], 1e-12)
    robust = least_squares(
        lambda c: matrix @ c - target,
        start,
        bounds=(0.0, np.inf),
        loss="soft_l1",
        f_scale=ROBUST_SCALE,
    )
    # In these units a coefficient is seconds at the feature's largest value: what the
    # solver leaves near a bound of 0 is 0.
    solution = np.where(robust.x > 1e-9 * y.max(), robust.x, 0.0) / scale
    coef = [0.0, 0.0, 0.0]
    for i, value in zip(used, solution, strict=True):
        coef[i] = float(value)
    return CostLaw(coef[0], coef[1], len(x), coef[2])


def _proportional(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> CostLaw:
    """The law of samples that are all one size: proportional to their FLOPs, else to their
    bytes, else a constant, so that a larger or smaller copy of the node scales with it."""
    if x[0] > 0:
        return CostLaw(0.0, float(y.mean() / x[0]), len(x))
    if z[0] > 0:
        return CostLaw(0.0, 0.0, len(x), float(y.mean() / z[0]))
    return CostLaw(float(y.mean()), 0.0, len(x))


def fit_laws(samples: Iterable[Sample]) -> dict[str, CostLaw]:
    """One law per law key and one per op type (where the two differ, both).

    Args:
        samples: measured nodes.

    Returns:
        Key -> its law, sorted.
    """
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.op_type].append(s)
        if s.law_key != s.op_type:
            groups[s.law_key].append(s)
    return {key: fit_group(group) for key, group in sorted(groups.items())}


def fit_group(samples: Iterable[Sample]) -> CostLaw:
    """One law over all `samples`, whatever their kind."""
    group = list(samples)
    return fit_law([s.flops for s in group], [s.seconds for s in group], [s.nbytes for s in group])


def size_table(samples: Iterable[Sample]) -> dict[str, np.ndarray]:
    """The sizes measured per law key: key -> (M, 3) rows of FLOPs, bytes and the median
    seconds of the nodes of that size (`flcompile.costs.measured_sizes`).

    Args:
        samples: measured nodes.

    Returns:
        The table, keys sorted, rows by FLOPs then bytes.
    """
    times: dict[str, dict[tuple[float, float], list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for s in samples:
        times[s.law_key][(s.flops, s.nbytes)].append(s.seconds)
    return {
        key: np.array([[f, b, statistics.median(t)] for (f, b), t in sorted(sizes.items())])
        for key, sizes in sorted(times.items())
    }


def predict_s(
    laws: Mapping[str, CostLaw],
    samples: Iterable[Sample],
    sizes: Mapping[str, np.ndarray] | None = None,
) -> float:
    """The laws' total seconds for `samples` (a node without any law costs nothing), or
    where `sizes` has a node's exact size, its measured time: as planning prices them
    (`flcompile.costs.profiled.price_nodes`)."""
    priced = [s for s in samples if resolve_law(laws, s.law_key) is not None]
    if not priced:
        return 0.0
    work = NodeWork(
        tuple(s.law_key for s in priced),
        np.array([s.flops for s in priced]),
        np.array([s.nbytes for s in priced]),
    )
    return float(price_nodes(laws, MeasuredSizes.of(sizes or {}), work).sum())
