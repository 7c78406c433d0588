"""plan.json, schema 1 (docs/design.md §6): build it from a search result, and re-simulate it.

`resimulate(plan)` rebuilds the timeline from `paths[]` alone with the one simulator; its
answer equals `predicted_s`, which lets anyone check a plan without flcompile's internals.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from flcompile.costs import BYTES_PER_MB, ComputeModel, LinkModel
from flcompile.instance import CostTable, PathTimes, Schedule, Timeline
from flcompile.load import LoadedModel
from flcompile.passes.split import single_cut_name
from flcompile.passes.tile import tile_tensor_name
from flcompile.search import FusedPlan, SearchResult
from flcompile.simulate import simulate

SCHEMA = 1


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _io(model_proto) -> dict:
    def describe(values) -> list[dict]:
        out = []
        for v in values:
            t = v.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
            out.append({"name": v.name, "shape": shape, "dtype": _dtype_name(t.elem_type)})
        return out

    inits = {i.name for i in model_proto.graph.initializer}
    inputs = [i for i in model_proto.graph.input if i.name not in inits]
    return {"inputs": describe(inputs), "outputs": describe(model_proto.graph.output)}


def _dtype_name(elem_type: int) -> str:
    return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))


def fused_paths(plan: FusedPlan, timeline: Timeline) -> list[dict]:
    """plan.json's paths[]: per path its tile, cut, sends and simulated times."""
    table, schedule, tiling = plan.table, plan.schedule, plan.tiling
    block = tiling.block
    n, c = block.fused_shape[0], block.fused_shape[1]
    position = {p: i for i, p in enumerate(schedule.order)}
    times = {t.path: t for t in timeline.paths}
    index = {t: i for i, t in enumerate(plan.costs.tensors)}
    result = []
    for p in range(tiling.num_paths):
        row, col = tiling.axes(p)
        cut = schedule.cuts[p]
        sends = []
        for tensor in plan.costs.crossing[cut]:
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
                "device_s": float(table.device_s[p, cut]),
                "link_s": float(table.link_s[p, cut]),
                "edge_s": float(table.edge_s[p, cut]),
                "device_flops": float(plan.costs.flops[p, :cut].sum()),
                "edge_flops": float(plan.costs.flops[p, cut:].sum()),
                "device_start": t.device_start,
                "device_end": t.device_end,
                "link_start": t.link_start,
                "link_end": t.link_end,
                "edge_start": t.edge_start,
                "edge_end": t.edge_end,
            }
        )
    return result


def build_plan_json(
    loaded: LoadedModel,
    result: SearchResult,
    compute: ComputeModel,
    link: LinkModel,
    solver: str,
    timeline: Timeline | None,
    verify: dict | None,
    measured: dict | None,
) -> dict:
    """Assemble plan.json (schema 1).

    Args:
        loaded: the source model.
        result: the search result.
        compute: the compute model used.
        link: the link model used.
        solver: the --solver asked for.
        timeline: the chosen plan's simulated timeline (None for plans without FL).
        verify: verification's to_json(), or None when skipped.
        measured: timing's to_json(), or None when skipped.

    Returns:
        The JSON-ready dict.
    """
    shannon = None
    if link.shannon is not None:
        s = link.shannon
        shannon = {
            "bandwidth_hz": s.bandwidth_hz,
            "tx_power_w": s.tx_power_w,
            "channel_gain": s.channel_gain,
            "noise_w": s.noise_w,
        }
    fused = None
    paths: list[dict] = []
    post_fuse = 0.0
    plan = result.fused if result.use_fused else None
    if plan is not None and timeline is not None:
        block = plan.tiling.block
        fused = {
            "tensor": block.fused,
            "shape": list(block.fused_shape),
            "grid": list(plan.tiling.grid),
            "block_nodes": [n.name for n in block.nodes],
            "redundancy": plan.costs.redundancy,
        }
        paths = fused_paths(plan, timeline)
        post_fuse = plan.table.post_fuse_s
    nfl = result.baselines.nfl
    return {
        "schema": SCHEMA,
        "model": {"path": loaded.path, "sha256": loaded.sha256, **_io(loaded.model)},
        "link": {
            "rate_MBps": link.rate_MBps,
            "bytes_per_MB": BYTES_PER_MB,
            "latency_s": link.latency_s,
            "shannon": shannon,
            "return_rate_MBps": link.return_rate_MBps,
        },
        "cost": {
            "kind": compute.kind,
            "device_flops": compute.device_flops,
            "edge_flops": compute.edge_flops,
            "overhead_dev_s": compute.overhead_dev_s,
            "overhead_edge_s": compute.overhead_edge_s,
            "edge_concurrency": compute.edge_concurrency,
        },
        "solver": plan.solver if plan is not None else "nfl",
        "solver_requested": solver,
        "search": {
            "candidates_F": result.stats.candidates_F,
            "grids_tried": result.stats.grids_tried,
            "plans_evaluated": result.stats.plans_evaluated,
            "seconds": result.stats.seconds,
            "best_by_solver_s": {k: _finite(v) for k, v in result.best_by_solver.items()},
        },
        "fused": fused,
        "paths": paths,
        "nfl_plan": None
        if plan is not None
        else {
            "cut": nfl.label,
            "reason": _why_no_fused_layers(result, solver),
            "device_nodes": nfl.index,
            "sends": [single_cut_name(t) for t in nfl.tensors],
            "device_s": nfl.device_s,
            "link_s": nfl.link_s,
            "edge_s": nfl.edge_s,
        },
        "post_fuse_edge_s": post_fuse,
        "return_s": plan.table.return_s if plan is not None else nfl.return_s,
        "predicted_s": result.predicted_s,
        "lower_bound_s": result.lower_bound_s,
        "baselines": result.baselines.to_json(),
        "notes": list(result.notes),
        "verify": verify,
        "measured": measured,
    }


def _why_no_fused_layers(result: SearchResult, solver: str) -> str:
    if solver == "nfl":
        return "--solver nfl"
    if result.fused is None:
        return "no fused-layer plan is possible for this model"
    return "a single cut is faster than every fused-layer plan"


def plan_timeline(plan: dict) -> Timeline:
    """The simulated timeline of a plan.json, from its own numbers (see `resimulate`).

    A plan without fused layers is one path, 0: device, then link, then edge, then the
    return.

    Args:
        plan: a loaded plan.json.

    Returns:
        The timeline; its finish equals plan["predicted_s"] for a consistent plan.
    """
    if not plan["paths"]:
        nfl = plan["nfl_plan"]
        d, lk, e = nfl["device_s"], nfl["link_s"], nfl["edge_s"]
        times = PathTimes(0, 0.0, d, d, d + lk, d + lk, d + lk + e)
        return Timeline((times,), d + lk + e, d + lk + e + plan["return_s"])
    paths = sorted(plan["paths"], key=lambda p: p["index"])
    column = lambda key: np.array([[p[key]] for p in paths], float)  # noqa: E731
    table = CostTable(
        column("device_s"),
        column("link_s"),
        column("edge_s"),
        post_fuse_s=plan["post_fuse_edge_s"],
        edge_concurrency=plan["cost"]["edge_concurrency"],
        return_s=plan["return_s"],
    )
    order = tuple(p["index"] for p in sorted(paths, key=lambda p: p["order"]))
    return simulate(table, Schedule(order, (0,) * len(paths)))


def resimulate(plan: dict) -> float:
    """Re-simulate a plan.json from its own numbers.

    Args:
        plan: a loaded plan.json.

    Returns:
        The predicted latency; equal to plan["predicted_s"] for a consistent plan.
    """
    return plan_timeline(plan).finish
