"""A plan without fused layers: one cut of the untiled model, device then link then edge."""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from flcompile.costs.untiled import SingleCut
from flcompile.costs.wire import DEFAULT_SEND_DTYPE
from flcompile.emit import Emitted, emit_single_cut
from flcompile.passes.split import single_cut_name
from flcompile.schedule import Timeline, one_path_timeline


def single_cut_timeline(cut: SingleCut) -> Timeline:
    """A plan without fused layers as a one-path timeline: device, then link, then edge."""
    return one_path_timeline(cut.device_s, cut.link_s, cut.edge_s, cut.return_s)


def single_cut_segments(cut: SingleCut) -> list[tuple[str, float, float, str]]:
    """The cut's timeline as (lane, start_s, end_s, label) bars, for the plot's NFL panel."""
    t = single_cut_timeline(cut).paths[0]
    return [
        ("device", t.device_start, t.device_end, "local"),
        ("link", t.link_start, t.link_end, "send"),
        ("edge", t.edge_start, t.edge_end, "rest"),
    ]


@dataclass(frozen=True, eq=False)
class SingleCutPlan:
    """The best single cut (NFL) as the chosen plan.

    Attributes:
        cut: the cut.
        reason: why no plan with fused layers was chosen.
    """

    cut: SingleCut
    reason: str

    solver = "nfl"
    verify_tensor = None

    @property
    def predicted_s(self) -> float:
        """The cut's latency."""
        return self.cut.total_s

    def describe(self) -> str:
        """ "single cut (LABEL)"."""
        return f"single cut ({self.cut.label})"

    def timeline(self) -> Timeline:
        """The one-path timeline."""
        return single_cut_timeline(self.cut)

    def emit(
        self,
        normalized: onnx.ModelProto,
        node_order: tuple[str, ...],
        summary: dict,
        *,
        stages: bool,
        send_dtype: str = DEFAULT_SEND_DTYPE,
    ) -> Emitted:
        """The untiled model split at the cut (a single cut has no stage models); what
        crosses it is cast to `send_dtype`."""
        return emit_single_cut(normalized, self.cut, node_order, summary, send_dtype)

    def metadata(self, nfl_s: float) -> dict[str, str]:
        """plan, cut and predicted_s."""
        return {
            "plan": "single-cut",
            "cut": self.cut.label,
            "predicted_s": f"{self.predicted_s:.6g}",
        }

    def title(self) -> str:
        """ "no fused layers (LABEL)"."""
        return f"no fused layers ({self.cut.label})"

    def plot_options(self) -> dict:
        """One path, labelled with the cut, and nothing after a fuse."""
        return {
            "post_fuse_s": 0.0,
            "labels": {0: self.cut.label},
            "plan_label": "plan without fused layers",
        }

    def json_section(self) -> dict:
        """No fused tensor or paths; the cut in nfl_plan."""
        cut = self.cut
        return {
            "solver": self.solver,
            "fused": None,
            "paths": [],
            "nfl_plan": {
                "cut": cut.label,
                "reason": self.reason,
                "device_nodes": cut.index,
                "sends": [single_cut_name(t) for t in cut.tensors],
                "device_s": cut.device_s,
                "link_s": cut.link_s,
                "edge_s": cut.edge_s,
            },
            "post_fuse_edge_s": 0.0,
            "return_s": cut.return_s,
        }

    def summary_lines(self, plan_json: dict) -> list[str]:
        """One line: the cut and why."""
        return [f"plan       no fused layers: single cut {self.cut.label} ({self.reason})"]

    def measured_meaning(self) -> str:
        """The edge runs what follows the cut."""
        return "the share of the work after the cut"
