"""What a node costs in seconds: the analytic compute model of docs/design.md §4.

A node run on the device takes overhead + FLOPs / f_end, on the edge overhead + FLOPs / f_es,
with FLOPs counted by `flcompile.costs.flops`. `ComputeModel` is that analytic model; the
measured one, `flcompile.costs.profiled.ProfiledComputeModel`, has the same shape.
The edge model (how many paths the edge runs at once) is part of it, and
`edge_model_words` is how every report names it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from flcompile.costs.node_key import OVERALL

# A float, or a numpy array computed elementwise.
FloatOrArray = float | np.ndarray

# The paper's Table I.
PAPER_DEVICE_FLOPS = 2.23e8
PAPER_EDGE_FLOPS = 4.32e9


@dataclass(frozen=True, eq=False)
class NodeWork:
    """What some nodes compute, as a compute model needs it to price each one.

    Attributes:
        keys: (L,) each node's law key (`flcompile.costs.node_key`).
        flops: (..., L) FLOPs of each node (a row per path for tiles).
        nbytes: (..., L) activation bytes each node reads and writes.
    """

    keys: tuple[str, ...]
    flops: np.ndarray
    nbytes: np.ndarray

    def select(self, mask: np.ndarray) -> NodeWork:
        """The nodes where `mask` (L,) is true."""
        keys = tuple(k for k, m in zip(self.keys, mask, strict=True) if m)
        return NodeWork(keys, self.flops[..., mask], self.nbytes[..., mask])


def node_work(keys: tuple[str, ...], flops: np.ndarray, nbytes: np.ndarray | None) -> NodeWork:
    """`NodeWork` of tables that may lack keys or bytes (then: the overall law, 0 bytes)."""
    if len(keys) != flops.shape[-1]:
        keys = (OVERALL,) * flops.shape[-1]
    return NodeWork(keys, flops, np.zeros_like(flops) if nbytes is None else nbytes)


@dataclass(frozen=True)
class ComputeModel:
    """How long the device and the edge take for a given number of FLOPs.

    Attributes:
        device_flops: f_end, the device's speed in FLOP/s.
        edge_flops: f_es, the edge server's speed in FLOP/s.
        overhead_dev_s: fixed cost per node run on the device.
        overhead_edge_s: fixed cost per node run on the edge.
        edge_concurrency: 1 = one node at a time (default); 0 = unlimited (the paper's
            Eq. 4); k > 1 = k paths at once.
        kind: which cost model this is (plan.json's cost.kind): FLOPs over speeds.
    """

    device_flops: float = PAPER_DEVICE_FLOPS
    edge_flops: float = PAPER_EDGE_FLOPS
    overhead_dev_s: float = 0.0
    overhead_edge_s: float = 0.0
    edge_concurrency: int = 1
    kind: ClassVar[str] = "analytic"

    def device_s(self, flops: FloatOrArray, nodes: int = 1) -> FloatOrArray:
        """Seconds for `nodes` nodes totalling `flops` FLOPs on the device (elementwise)."""
        return nodes * self.overhead_dev_s + flops / self.device_flops

    def edge_s(self, flops: FloatOrArray, nodes: int = 1) -> FloatOrArray:
        """Seconds for `nodes` nodes totalling `flops` FLOPs on the edge (elementwise)."""
        return nodes * self.overhead_edge_s + flops / self.edge_flops

    def device_nodes_s(self, work: NodeWork) -> np.ndarray:
        """Seconds of each node of `work` on the device (the shape of `work.flops`)."""
        return self.device_s(work.flops)

    def edge_nodes_s(self, work: NodeWork) -> np.ndarray:
        """Seconds of each node of `work` on the edge (the shape of `work.flops`)."""
        return self.edge_s(work.flops)

    def edge_total_s(self, work: NodeWork) -> float:
        """Seconds of all the nodes of `work` (one row) on the edge, one after another."""
        return float(self.edge_s(work.flops.sum(), nodes=len(work.keys)))

    def device_run_s(self, nodes: FloatOrArray) -> FloatOrArray:
        """What one device stage run of `nodes` nodes costs beyond them (elementwise;
        `flcompile.costs.run_overhead`): 0 in the analytic model."""
        return nodes * 0.0

    def edge_run_s(self, nodes: FloatOrArray) -> FloatOrArray:
        """What one edge stage run of `nodes` nodes costs beyond them: 0 here."""
        return nodes * 0.0

    def without_overheads(self) -> ComputeModel:
        """The model without its fixed costs per node (for the fluid lower bound)."""
        return replace(self, overhead_dev_s=0.0, overhead_edge_s=0.0)

    def for_model(self, keys: tuple[str, ...]) -> ComputeModel:
        """The model bound to the law keys of the model it plans (used by reports only)."""
        return self

    def to_json(self) -> dict:
        """plan.json's cost section."""
        return {
            "kind": self.kind,
            "device_flops": self.device_flops,
            "edge_flops": self.edge_flops,
            "overhead_dev_s": self.overhead_dev_s,
            "overhead_edge_s": self.overhead_edge_s,
            "edge_concurrency": self.edge_concurrency,
        }


def compute_model(
    paper: bool = False,
    edge_concurrency: int | None = None,
    *,
    device_flops: float | None = None,
    edge_flops: float | None = None,
    overhead_dev_s: float = 0.0,
    overhead_edge_s: float = 0.0,
) -> ComputeModel:
    """The compute model the command-line options describe (`flcompile` and the tools).

    Args:
        paper: --paper: the edge is unlimited (Eq. 4) unless `edge_concurrency` is given.
        edge_concurrency: --edge-concurrency, or None for the default (serial; --paper: 0).
        device_flops: f_end, or None for Table I's.
        edge_flops: f_es, or None for Table I's.
        overhead_dev_s: fixed seconds per device node.
        overhead_edge_s: fixed seconds per edge node.

    Returns:
        The compute model.
    """
    if edge_concurrency is None:
        edge_concurrency = 0 if paper else 1
    return ComputeModel(
        device_flops=device_flops or PAPER_DEVICE_FLOPS,
        edge_flops=edge_flops or PAPER_EDGE_FLOPS,
        overhead_dev_s=overhead_dev_s,
        overhead_edge_s=overhead_edge_s,
        edge_concurrency=edge_concurrency,
    )


def edge_model_words(edge_concurrency: int) -> str:
    """The edge model in words: "serial", "unlimited (paper's Eq. 4)" or "K paths at once"."""
    if edge_concurrency == 0:
        return "unlimited (paper's Eq. 4)"
    if edge_concurrency == 1:
        return "serial"
    return f"{edge_concurrency} paths at once"
