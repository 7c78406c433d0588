"""The chosen plan, one type: a plan with fused layers or a single cut, behind one `Plan`.

Callers never ask which kind they hold: each kind gives its own timeline, emitted models,
words (the models' metadata, the plot's title, the console summary) and plan.json section.
"""

from __future__ import annotations

from typing import Protocol

import onnx

from flcompile.costs.wire import DEFAULT_SEND_DTYPE
from flcompile.emit import Emitted
from flcompile.plans.fused import FusedPlan
from flcompile.plans.single_cut import SingleCutPlan, single_cut_segments, single_cut_timeline
from flcompile.schedule import Timeline


class Plan(Protocol):
    """What every plan kind provides.

    Attributes:
        solver: the solver that found it ("nfl" for a single cut).
        predicted_s: the simulated latency.
    """

    @property
    def solver(self) -> str: ...

    @property
    def predicted_s(self) -> float: ...

    @property
    def verify_tensor(self) -> str | None:
        """The tensor verification compares before the split (F), or None."""

    def describe(self) -> str:
        """The plan kind in a few words ("fused", "single cut (after conv1)")."""

    def timeline(self) -> Timeline:
        """The simulated timeline."""

    def emit(
        self,
        normalized: onnx.ModelProto,
        node_order: tuple[str, ...],
        summary: dict,
        *,
        stages: bool,
        send_dtype: str = DEFAULT_SEND_DTYPE,
    ) -> Emitted:
        """The tiled, device, edge and (with `stages`) stage models; what the device sends
        is cast to `send_dtype` and cast back on the edge."""

    def metadata(self, nfl_s: float) -> dict[str, str]:
        """The `fl.*` metadata written on every emitted model."""

    def title(self) -> str:
        """The timeline plot's title after the model name."""

    def plot_options(self) -> dict:
        """`layout_timelines`' post_fuse_s, labels and plan_label for this plan."""

    def json_section(self) -> dict:
        """plan.json's solver, fused, paths, nfl_plan, post_fuse_edge_s and return_s."""

    def summary_lines(self, plan_json: dict) -> list[str]:
        """The console summary's plan lines, from this plan's plan.json."""

    def measured_meaning(self) -> str:
        """What edge.onnx's time over the original's time measures for this plan."""


__all__ = ["FusedPlan", "Plan", "SingleCutPlan", "single_cut_segments", "single_cut_timeline"]
