"""plan.json, schema 1 (docs/design.md §6): build it from a search result, and re-simulate it.

`resimulate(plan)` rebuilds the timeline from `paths[]` alone with the one simulator; its
answer equals `predicted_s`, which lets anyone check a plan without flcompile's internals.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from flcompile.costs import BYTES_PER_MB, ComputeModel, LinkModel
from flcompile.costs.table import CostTable
from flcompile.costs.wire import DEFAULT_SEND_DTYPE
from flcompile.load import LoadedModel
from flcompile.schedule import Schedule, Timeline, one_path_timeline
from flcompile.search import SearchResult
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


# plan.json's top-level keys, in the order they are written.
KEYS = (
    "schema",
    "model",
    "link",
    "cost",
    "solver",
    "solver_requested",
    "search",
    "fused",
    "paths",
    "nfl_plan",
    "post_fuse_edge_s",
    "return_s",
    "predicted_s",
    "lower_bound_s",
    "lower_bound_space_s",
    "baselines",
    "notes",
    "verify",
    "measured",
)


def build_plan_json(
    loaded: LoadedModel,
    result: SearchResult,
    compute: ComputeModel,
    link: LinkModel,
    verify: dict | None,
    measured: dict | None,
) -> dict:
    """Assemble plan.json (schema 1) from its sections; the chosen plan writes its own.

    Args:
        loaded: the source model.
        result: the search result.
        compute: the compute model used.
        link: the link model used.
        verify: verification's to_json(), or None when skipped.
        measured: timing's to_json(), or None when skipped.

    Returns:
        The JSON-ready dict.
    """
    sections = {
        "schema": SCHEMA,
        "model": _model_section(loaded),
        "link": {**_link_section(link), **_send_fields(result)},
        "cost": _cost_section(compute),
        **result.plan.json_section(),
        "solver_requested": result.strategy,
        "search": _search_section(result),
        **_outcome_section(result),
        "verify": verify,
        "measured": measured,
    }
    return {key: sections[key] for key in KEYS}


def _model_section(loaded: LoadedModel) -> dict:
    return {"path": loaded.path, "sha256": loaded.sha256, **_io(loaded.model)}


def _link_section(link: LinkModel) -> dict:
    shannon = None
    if link.shannon is not None:
        s = link.shannon
        shannon = {
            "bandwidth_hz": s.bandwidth_hz,
            "tx_power_w": s.tx_power_w,
            "channel_gain": s.channel_gain,
            "noise_w": s.noise_w,
        }
    return {
        "rate_MBps": link.rate_MBps,
        "bytes_per_MB": BYTES_PER_MB,
        "latency_s": link.latency_s,
        "shannon": shannon,
        "return_rate_MBps": link.return_rate_MBps,
        **({"profile": link.profile} if link.profile is not None else {}),
        **(
            {
                "device_s_per_message": link.device_s_per_message,
                "device_s_per_byte": link.device_s_per_byte,
            }
            if link.device_s_per_message or link.device_s_per_byte
            else {}
        ),
    }


def _send_fields(result: SearchResult) -> dict:
    """The link's send dtype, written only when it is not float32 (absent means float32)."""
    if result.send_dtype == DEFAULT_SEND_DTYPE:
        return {}
    return {"send_dtype": result.send_dtype}


def _cost_section(compute: ComputeModel) -> dict:
    return compute.to_json()


def _search_section(result: SearchResult) -> dict:
    stats = result.stats
    return {
        "candidates_F": stats.candidates_F,
        "grids_tried": stats.grids_tried,
        "plans_evaluated": stats.plans_evaluated,
        "seconds": stats.seconds,
        "best_by_solver_s": {k: _finite(v) for k, v in result.best_by_solver.items()},
    }


def _outcome_section(result: SearchResult) -> dict:
    """The prediction against the bound and the baselines, and the notes."""
    return {
        "predicted_s": result.predicted_s,
        "lower_bound_s": result.lower_bound_s,
        "lower_bound_space_s": result.lower_bound_space_s,
        "baselines": {**result.baselines.to_json(), **_nfl_float32(result)},
        "notes": list(result.notes),
    }


def _nfl_float32(result: SearchResult) -> dict:
    """NFL with float32 sends, beside NFL with the plan's send dtype (only when they differ)."""
    nfl = result.nfl_float32
    if nfl is None:
        return {}
    return {"nfl_float32_s": nfl.total_s, "nfl_float32_cut": nfl.label}


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
        return one_path_timeline(nfl["device_s"], nfl["link_s"], nfl["edge_s"], plan["return_s"])
    paths = sorted(plan["paths"], key=lambda p: p["index"])
    column = lambda key: np.array([[p[key]] for p in paths], float)  # noqa: E731
    # Under intermediate reuse a path's edge part reads the earlier paths': they run in order.
    serial = plan["fused"].get("intermediate_reuse", False)
    table = CostTable(
        column("device_s"),
        column("link_s"),
        column("edge_s"),
        post_fuse_s=plan["post_fuse_edge_s"],
        edge_concurrency=1 if serial else plan["cost"]["edge_concurrency"],
        return_s=plan["return_s"],
        waits=bool(plan["fused"].get("reuse", False)),
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
