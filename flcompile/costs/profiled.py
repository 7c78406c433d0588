"""A measured compute model: each node's seconds from a profile written by `flcompile profile`.

Each block node, tile copy, untiled node and fuse node is priced by the law of its kind
(`flcompile.costs.node_key`): its own key's ("Conv 3x3"), else its op type's, else the
profile's overall law (`flcompile.costs.node_key.resolve_law`), as a + b·FLOPs + c·bytes;
a node of a size the profile timed takes its measured time (`measured_sizes`), and each
stage run its measured run overhead (`run_overhead`).
The cost tables carry each node's key, FLOPs and bytes, so every solver, the baselines and
the lower bound (which drops the intercepts a) price nodes the same way without knowing it.
A side without a profile keeps the analytic model. The overall law also fills the analytic
fields (a as overhead per node, 1/b as speed), which reports print.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from flcompile.costs.measured_sizes import MeasuredSizes
from flcompile.costs.node_cost import ComputeModel, FloatOrArray, NodeWork
from flcompile.costs.node_key import OVERALL, resolve_law
from flcompile.costs.run_overhead import RunOverhead
from flcompile.errors import BadInputError

#: plan.json's words for the law of a profiled side.
LAW_WORDS = "per law key (op type and kernel), else op type, else overall: a + b*FLOPs + c*bytes"


@dataclass(frozen=True)
class SideProfile:
    """One side's measured laws.

    Attributes:
        path: the profile file.
        laws: law key -> law, with the overall law under `OVERALL`.
        about: what the file says of itself (schema, version, threads, machine, model).
        sizes: the sizes it measured.
        run: what a stage run costs beyond its nodes.
    """

    path: str
    laws: Mapping
    about: dict
    sizes: MeasuredSizes = field(default_factory=lambda: MeasuredSizes.of({}))
    run: RunOverhead = field(default_factory=RunOverhead)

    def to_json(self, keys: tuple[str, ...]) -> dict:
        """The side in plan.json: its file, and which law priced each key of the model."""
        used = {key: resolve_law(self.laws, key) for key in keys}
        return {
            **self.about,
            "file": self.path,
            "law": LAW_WORDS,
            "laws_used": used,
            "fallbacks": {k: v for k, v in used.items() if v != k},
            "run": self.run.to_json(),
        }


@dataclass(frozen=True)
class ProfiledComputeModel(ComputeModel):
    """Each side's seconds per node from its profile's laws, or the analytic model.

    Attributes:
        profiles: side ("device", "edge") -> the profile file its costs came from.
        sides: side -> its laws.
        intercepts: False drops every law's a and the run overheads (for the fluid lower
            bound).
        model_keys: the law keys of the model planned, for plan.json.
    """

    profiles: dict[str, str] = field(default_factory=dict)
    sides: dict[str, SideProfile] = field(default_factory=dict)
    intercepts: bool = True
    model_keys: tuple[str, ...] = ()
    kind: ClassVar[str] = "profiled"

    def device_nodes_s(self, work: NodeWork) -> np.ndarray:
        """Seconds of each node of `work` on the device, by its law."""
        if "device" not in self.sides:
            return super().device_nodes_s(work)
        return self._nodes_s(self.sides["device"], work)

    def edge_nodes_s(self, work: NodeWork) -> np.ndarray:
        """Seconds of each node of `work` on the edge, by its law."""
        if "edge" not in self.sides:
            return super().edge_nodes_s(work)
        return self._nodes_s(self.sides["edge"], work)

    def edge_total_s(self, work: NodeWork) -> float:
        """Seconds of all the nodes of `work` (one row) on the edge, one after another."""
        if "edge" not in self.sides:
            return super().edge_total_s(work)
        return float(self.edge_nodes_s(work).sum())

    def device_run_s(self, nodes: FloatOrArray) -> FloatOrArray:
        """The device profile's run overhead of a stage of `nodes` nodes (elementwise)."""
        return self._run_s("device", nodes)

    def edge_run_s(self, nodes: FloatOrArray) -> FloatOrArray:
        """The edge profile's run overhead of a stage of `nodes` nodes (elementwise)."""
        return self._run_s("edge", nodes)

    def _run_s(self, side: str, nodes: FloatOrArray) -> FloatOrArray:
        if side not in self.sides or not self.intercepts:
            return nodes * 0.0
        return self.sides[side].run.seconds(nodes)

    def _nodes_s(self, side: SideProfile, work: NodeWork) -> np.ndarray:
        return price_nodes(side.laws, side.sizes, work, self.intercepts)

    def without_overheads(self) -> ComputeModel:
        """The model without the laws' intercepts and the analytic overheads."""
        return replace(super().without_overheads(), intercepts=False)

    def for_model(self, keys: tuple[str, ...]) -> ComputeModel:
        """The model bound to the law keys of the model it plans (for plan.json)."""
        return replace(self, model_keys=tuple(sorted(set(keys))))

    def to_json(self) -> dict:
        """plan.json's cost section: the analytic fields, the files, and per side the laws."""
        return {
            **super().to_json(),
            "profiles": self.profiles,
            "sides": {name: s.to_json(self.model_keys) for name, s in self.sides.items()},
        }


def price_nodes(
    laws: Mapping, sizes: MeasuredSizes, work: NodeWork, intercepts: bool = True
) -> np.ndarray:
    """Each node's seconds by the law of its kind, or its measured time.

    A measured time never goes below the law without its intercept (b·FLOPs + c·bytes),
    which is what the fluid lower bound prices (`intercepts=False`): so no plan beats it.

    Args:
        laws: law key -> law, with the overall law under `OVERALL`.
        sizes: the measured sizes.
        work: the nodes.
        intercepts: False: the laws without their intercepts and no measured sizes.

    Returns:
        The seconds, the shape of `work.flops`.
    """
    chosen = [laws[resolve_law(laws, key)] for key in work.keys]
    rows = [[w.a_s, w.b_s_per_flop, w.c_s_per_byte] for w in chosen]
    a, b, c = np.array(rows, float).reshape(-1, 3).T
    linear = b * work.flops + c * work.nbytes
    if not intercepts:
        return linear
    return np.maximum(sizes.measured_or(work.keys, work.flops, work.nbytes, a + linear), linear)


def read_side(path: str, side: str) -> SideProfile:
    """A profile file's laws, for one side.

    Args:
        path: the profile file.
        side: "device" or "edge", for messages.

    Returns:
        The side's laws.

    Raises:
        BadInputError: the file is not a profile, or its overall law has no FLOP term.
    """
    from flcompile.profile.profile_json import read_laws, read_run, read_sizes

    laws, data = read_laws(path)
    sizes = read_sizes(data, path)
    run = read_run(data, path)
    if laws[OVERALL].b_s_per_flop <= 0:
        raise BadInputError(
            f"--{side}-profile {path}: the profile's law has no cost per FLOP",
            hint="profile a model with convolutions: flcompile profile MODEL -o FILE",
        )
    about = {k: data.get(k) for k in ("schema", "version", "model", "threads", "machine")}
    return SideProfile(str(path), laws, about, MeasuredSizes.of(sizes), run)


def profiled(
    compute: ComputeModel, device_profile: str | None, edge_profile: str | None
) -> ComputeModel:
    """`compute` with each profiled side's costs measured.

    Args:
        compute: the analytic model the other options describe.
        device_profile: the device's profile, or None.
        edge_profile: the edge's profile, or None.

    Returns:
        `compute` itself without profiles, else a ProfiledComputeModel.

    Raises:
        BadInputError: a profile cannot be read.
    """
    if device_profile is None and edge_profile is None:
        return compute
    changes: dict = {"profiles": {}, "sides": {}}
    for side, path, prefix in (("device", device_profile, "dev"), ("edge", edge_profile, "edge")):
        if path is None:
            continue
        measured = read_side(path, side)
        overall = measured.laws[OVERALL]
        changes[f"overhead_{prefix}_s"] = overall.a_s
        changes[f"{side}_flops"] = 1.0 / overall.b_s_per_flop
        changes["profiles"][side] = path
        changes["sides"][side] = measured
    base = ProfiledComputeModel(
        compute.device_flops,
        compute.edge_flops,
        compute.overhead_dev_s,
        compute.overhead_edge_s,
        compute.edge_concurrency,
    )
    return replace(base, **changes)
