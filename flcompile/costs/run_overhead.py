"""What one stage run costs beyond its nodes: the run overhead of docs/design.md §4.

Every stage the runtime runs (a path's device or edge stage, the fuse with the rest of the
model, a single cut's halves) is one `InferenceSession.run`, which costs its kernels plus
the session's and executor's own work: seconds = s_per_run + s_per_node · nodes, measured
by `flcompile profile` as each run's wall time less its kernel times. The analytic model
and a profile without it price 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flcompile.costs.node_cost import FloatOrArray


@dataclass(frozen=True)
class RunOverhead:
    """seconds = s_per_run + s_per_node · nodes for one run of `nodes` nodes (0 nodes: no run).

    Attributes:
        s_per_run: fixed seconds per run.
        s_per_node: seconds per node run, beyond its kernel.
        n: how many measured runs it was fitted on (0: not measured).
    """

    s_per_run: float = 0.0
    s_per_node: float = 0.0
    n: int = 0

    def seconds(self, nodes: FloatOrArray) -> FloatOrArray:
        """Seconds of a run of `nodes` nodes (elementwise; 0 nodes cost nothing)."""
        value = self.s_per_run + self.s_per_node * np.asarray(nodes, float)
        result = np.where(np.asarray(nodes) > 0, value, 0.0)
        return result if isinstance(nodes, np.ndarray) else float(result)

    def to_json(self) -> dict:
        """The profile's (and plan.json's) `run` section."""
        return {"s_per_run": self.s_per_run, "s_per_node": self.s_per_node, "n": self.n}

    @classmethod
    def from_json(cls, value: object) -> RunOverhead:
        """The overhead of a `run` section; raises KeyError, TypeError or ValueError."""
        if value is None:
            return cls()
        overhead = cls(float(value["s_per_run"]), float(value["s_per_node"]), int(value["n"]))
        if (
            min(overhead.s_per_run, overhead.s_per_node) < 0
            or not np.isfinite([overhead.s_per_run, overhead.s_per_node]).all()
        ):
            raise ValueError(f"run overhead {value} is not a cost")
        return overhead


def fit_run_overhead(runs: list[tuple[int, float]]) -> RunOverhead:
    """The least-squares law seconds = s_per_run + s_per_node · nodes (both >= 0).

    Args:
        runs: (nodes, overhead seconds) of each measured stage.

    Returns:
        The law; all zero without a run of at least one node.
    """
    from scipy.optimize import nnls

    runs = [(n, s) for n, s in runs if n > 0]
    if not runs:
        return RunOverhead()
    nodes = np.array([n for n, _ in runs], float)
    seconds = np.array([s for _, s in runs], float)
    (per_run, per_node), _ = nnls(np.stack([np.ones_like(nodes), nodes], 1), seconds)
    return RunOverhead(float(per_run), float(per_node), len(runs))
