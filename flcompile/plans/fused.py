"""A plan with fused layers: F, its tiling into paths, each path's cut, and their order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from flcompile.costs.intermediate import ComputedPieces
from flcompile.costs.table import CostTable, run_link_s
from flcompile.costs.tiles import TileCosts
from flcompile.costs.wire import DEFAULT_SEND_DTYPE
from flcompile.emit import Emitted, emit_fused
from flcompile.errors import InternalError
from flcompile.intermediate_pieces import piece_reads
from flcompile.passes.fusable import Candidate
from flcompile.passes.receptive_field import Tiling, uniform_bounds
from flcompile.passes.tile import tile_tensor_name
from flcompile.plans.text import ms, shape, size
from flcompile.reuse_pieces import held_inputs, piece_name
from flcompile.schedule import Schedule, Timeline
from flcompile.simulate import simulate

MAX_PATH_ROWS = 16  # paths listed in the console summary; plan.json has them all
CUT_WIDTH = 30


@dataclass(frozen=True, eq=False)
class FusedPlan:
    """A plan with fused layers: F, its tiling, the costs, and the schedule.

    Attributes:
        candidate: F and its block.
        tiling: the grid and per-tile regions.
        costs: per-path FLOPs and bytes.
        table: the solvers' seconds table.
        schedule: the order and cuts.
        solver: the solver that found the schedule.
        predicted_s: the simulated latency.
        computed: under intermediate reuse, what each path's edge part computes (every
            path cut at the raw input; `table` is then valid for this order only); None
            when each path's edge part computes its whole region.
    """

    candidate: Candidate
    tiling: Tiling
    costs: TileCosts
    table: CostTable
    schedule: Schedule
    solver: str
    predicted_s: float
    computed: ComputedPieces | None = None

    @property
    def reuse(self) -> bool:
        """Whether paths send only what the edge does not hold (edge-side reuse)."""
        return self.table.reuse is not None or self.computed is not None

    def piece_sends(self) -> list[tuple[int, list[tuple[str, tuple]]]]:
        """Per path in run order, the pieces (rectangles) it sends of each crossing tensor.

        Raises:
            InternalError: the plan does not reuse.
        """
        if self.computed is not None:  # every path cut at the raw input
            block_input = self.tiling.block.input
            return [(p, [(block_input, self.computed.sends[p])]) for p in self.schedule.order]
        if self.table.reuse is None:
            raise InternalError("piece_sends asked of a plan without edge-side reuse")
        geometry = self.table.reuse.geometry
        sends = geometry.sends(self.schedule.order, self.schedule.cuts)
        return [
            (p, [(geometry.tensors[t], pieces) for t, pieces in entry])
            for p, entry in zip(self.schedule.order, sends, strict=True)
        ]

    def link_by_path(self) -> np.ndarray:
        """(P,) each path's link seconds in this plan's schedule (its new bytes under reuse)."""
        order, cuts = np.asarray(self.schedule.order), np.asarray(self.schedule.cuts)
        out = np.zeros(len(order))
        out[order] = run_link_s(self.table, order[None], cuts[None])[0]
        return out

    @property
    def redundancy(self) -> float:
        """Σ over paths of the FLOPs their edge and device parts compute / the block's
        untiled FLOPs (intermediate reuse computes each output pixel about once)."""
        if self.computed is None:
            return self.costs.redundancy
        tiled = self.costs.flops.sum()
        untiled = tiled / self.costs.redundancy if self.costs.redundancy > 0 else 0.0
        return float(self.computed.flops(self.costs).sum() / untiled) if untiled > 0 else 1.0

    @property
    def verify_tensor(self) -> str:
        """F: verification compares it in the tiled and the original model."""
        return self.candidate.tensor

    def describe(self) -> str:
        """ "fused"."""
        return "fused"

    def timeline(self) -> Timeline:
        """The simulated timeline of the schedule."""
        return simulate(self.table, self.schedule)

    def emit(
        self,
        normalized: onnx.ModelProto,
        node_order: tuple[str, ...],
        summary: dict,
        *,
        stages: bool,
        send_dtype: str = DEFAULT_SEND_DTYPE,
    ) -> Emitted:
        """The tiled model split per path at its cut, and (with `stages`) the stage models;
        what each path sends is cast to `send_dtype`."""
        return emit_fused(normalized, self, summary, stages=stages, send_dtype=send_dtype)

    def metadata(self, nfl_s: float) -> dict[str, str]:
        """F, the grid, the solver, and the predicted and NFL latencies."""
        return {
            "plan": "fused",
            "fused_tensor": self.candidate.tensor,
            "grid": "x".join(map(str, self.tiling.grid)),
            "solver": self.solver,
            "predicted_s": f"{self.predicted_s:.6g}",
            "nfl_s": f"{nfl_s:.6g}",
        }

    def title(self) -> str:
        """ "SOLVER RxC at F"."""
        r, c = self.tiling.grid
        return f"{self.solver} {r}x{c} at {self.candidate.tensor}"

    def plot_options(self) -> dict:
        """Paths labelled p0, p1, … and the edge's fuse and rest after them."""
        return {"post_fuse_s": self.table.post_fuse_s, "labels": None, "plan_label": None}

    def json_section(self) -> dict:
        """F and its block, every path, and no single cut."""
        block = self.tiling.block
        return {
            "solver": self.solver,
            "fused": {
                "tensor": block.fused,
                "shape": list(block.fused_shape),
                "grid": list(self.tiling.grid),
                "block_nodes": [n.name for n in block.nodes],
                "redundancy": self.redundancy,
                **({"reuse": True} if self.reuse else {}),
                **({"intermediate_reuse": True} if self.computed is not None else {}),
            },
            "paths": fused_paths(self, self.timeline()),
            "nfl_plan": None,
            "post_fuse_edge_s": self.table.post_fuse_s,
            "return_s": self.table.return_s,
        }

    def summary_lines(self, plan_json: dict) -> list[str]:
        """F, the grid and the solver, then a row per path in run order."""
        fused = plan_json["fused"]
        r, c = fused["grid"]
        unequal = "" if _uniform(fused, plan_json["paths"]) else " of unequal tiles"
        lines = [
            f"plan       fuse at {fused['tensor']} ({shape(fused['shape'])}), grid {r}x{c}"
            f"{unequal} = {r * c} paths, redundancy {fused['redundancy']:.2f}x, "
            f"solver {plan_json['solver']}" + _reuse_words(fused),
            "  path order  tile h×w        cut after                      sends        "
            "device     link       edge",
        ]
        rows = sorted(plan_json["paths"], key=lambda p: p["order"])
        lines += [_path_row(p) for p in rows[:MAX_PATH_ROWS]]
        if len(rows) > MAX_PATH_ROWS:
            lines.append(f"  … {len(rows) - MAX_PATH_ROWS} more paths in plan.json")
        return lines

    def measured_meaning(self) -> str:
        """The edge runs the tiles' rest, their halos and the fuse (under intermediate reuse,
        each node in small pieces and the Slices/Concats that assemble their inputs)."""
        if self.computed is not None:
            return "what many small node runs, the Slices/Concats assembling them and the fuse cost"
        return "what recomputed halos, smaller convolutions and the fuse cost"


def _reuse_words(fused: dict) -> str:
    """The summary's words for plan.json's reuse flags."""
    if fused.get("intermediate_reuse"):
        return (
            ", intermediate reuse (each path sends new pixels only and computes new outputs only)"
        )
    return ", edge-side reuse (each path sends only new pixels)" if fused.get("reuse") else ""


def _uniform(fused: dict, paths: list[dict]) -> bool:
    """Whether plan.json's tiles are the equal splits of F (`uniform_bounds`)."""
    rows, cols = fused["grid"]
    for axis, parts, length in (("h", rows, fused["shape"][2]), ("w", cols, fused["shape"][3])):
        bounds = sorted({0, *(p["tile"][axis][1] for p in paths)})
        if tuple(bounds) != uniform_bounds(length, parts):
            return False
    return True


def _path_row(p: dict) -> str:
    """One path of plan.json's paths[] as a summary row."""
    (h0, h1), (w0, w1) = p["tile"]["h"], p["tile"]["w"]
    tile = f"[{h0},{h1})×[{w0},{w1})"
    cut = p["cut_after"] or "(raw input tile)"
    if len(cut) > CUT_WIDTH:
        cut = "…" + cut[-(CUT_WIDTH - 1) :]
    sent = size(sum(s["bytes"] for s in p["sends"]))
    return (
        f"  p{p['index']:<3} {p['order']:>5}  {tile:<15} {cut:<30} {sent:>10}  "
        f"{ms(p['device_s']):>9}  {ms(p['link_s']):>9}  {ms(p['edge_s']):>9}"
    )


def fused_paths(plan: FusedPlan, timeline: Timeline) -> list[dict]:
    """plan.json's paths[]: per path its tile, cut, sends and simulated times."""
    table, schedule, tiling = plan.table, plan.schedule, plan.tiling
    block = tiling.block
    n, c = block.fused_shape[0], block.fused_shape[1]
    position = {p: i for i, p in enumerate(schedule.order)}
    times = {t.path: t for t in timeline.paths}
    index = {t: i for i, t in enumerate(plan.costs.tensors)}
    link_s = plan.link_by_path()
    edge_flops = plan.costs.flops if plan.computed is None else plan.computed.flops(plan.costs)
    piece_sends = plan.piece_sends() if plan.reuse else []
    pieces = dict(piece_sends)
    keeps = None
    if plan.computed is not None:
        held, keeps = piece_reads(tiling, plan.computed)
    else:
        held = held_inputs(tiling, piece_sends)
    result = []
    for p in range(tiling.num_paths):
        row, col = tiling.axes(p)
        cut = schedule.cuts[p]
        sends = []
        if plan.reuse:
            sends = _piece_entries(plan, p, pieces[p])
        for tensor in plan.costs.crossing[cut] if not plan.reuse else ():
            h, w = row.tensors[tensor], col.tensors[tensor]
            nbytes = int(plan.costs.tensor_bytes[p, index[tensor]])
            sends.append(
                {
                    "tensor": tile_tensor_name(p, tensor),
                    "shape": block.tile_shape(tensor, h.size, w.size),
                    "bytes": nbytes,
                }
            )
        t = times[p]
        result.append(
            {
                "index": p,
                "order": position[p],
                "tile": {
                    "h": [row.fused.start, row.fused.stop],
                    "w": [col.fused.start, col.fused.stop],
                },
                "tile_shape": [n, c, row.fused.size, col.fused.size],
                "cut_after": block.nodes[cut - 1].name if cut > 0 else None,
                "device_nodes": cut,
                "sends": sends,
                **({"held": list(held[p])} if plan.reuse else {}),
                **(_computed_entries(plan, p, keeps[p]) if keeps is not None else {}),
                "device_s": float(table.device_s[p, cut]),
                "link_s": float(link_s[p]),
                "edge_s": float(table.edge_s[p, cut]),
                "device_flops": float(plan.costs.flops[p, :cut].sum()),
                "edge_flops": float(edge_flops[p, cut:].sum()),
                "device_start": t.device_start,
                "device_end": t.device_end,
                "link_start": t.link_start,
                "link_end": t.link_end,
                "edge_start": t.edge_start,
                "edge_end": t.edge_end,
            }
        )
    return result


def _computed_entries(plan: FusedPlan, p: int, keeps: tuple[str, ...]) -> dict:
    """plan.json's intermediate-reuse fields of path p: per block node, the rectangles its
    edge part computes (nodes it computes nothing of left out), and what it keeps."""
    nodes = plan.tiling.block.nodes
    computes = [
        {"node": node.name, "regions": [{"h": [a, b], "w": [c, d]} for a, b, c, d in rects]}
        for n, node in enumerate(nodes)
        if (rects := plan.computed.rects(p, n))
    ]
    return {"computes": computes, "keeps": list(keeps)}


def _piece_entries(plan: FusedPlan, p: int, entries: list[tuple[str, tuple]]) -> list[dict]:
    """plan.json's sends of path p under reuse: each piece, its tensor and region, its bytes."""
    block = plan.tiling.block
    index = {t: i for i, t in enumerate(block.tensors)}
    row, col = plan.tiling.axes(p)
    if plan.table.reuse is not None:
        bytes_per_pixel = plan.table.reuse.geometry.bytes_per_pixel
    else:  # intermediate reuse: the tensors' wire bytes over their pixels
        bytes_per_pixel = plan.costs.tensor_bytes[p] / (row.tensor_sizes * col.tensor_sizes)
    out = []
    for tensor, pieces in entries:
        whole = (row.tensors[tensor].start, row.tensors[tensor].stop)
        whole += (col.tensors[tensor].start, col.tensors[tensor].stop)
        for i, (h0, h1, w0, w1) in enumerate(pieces):
            out.append(
                {
                    "tensor": piece_name(p, tensor, i, pieces == (whole,)),
                    "of": tensor,
                    "region": {"h": [h0, h1], "w": [w0, w1]},
                    "shape": block.tile_shape(tensor, h1 - h0, w1 - w0),
                    "bytes": round((h1 - h0) * (w1 - w0) * bytes_per_pixel[index[tensor]]),
                }
            )
    return out
