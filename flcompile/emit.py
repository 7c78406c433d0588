"""Build the emitted models of a plan: tiled.onnx (annotated), device.onnx, edge.onnx, stages.

Every model keeps the source's opset and IR version; `check_emitted` runs
`onnx.checker.check_model(full_check=True)` (strict shape inference) on each written file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
import onnx_graphsurgeon as gs

from flcompile.costs.untiled import SingleCut
from flcompile.errors import InternalError
from flcompile.passes.placement import device_nodes, path_sends, placement_of
from flcompile.passes.split import extract, prepare_single_cut, split
from flcompile.passes.tile import tile_graph, tile_tensor_name
from flcompile.search import FusedPlan

PRODUCER = "flcompile"


@dataclass(frozen=True, eq=False)
class Emitted:
    """The models of one plan.

    Attributes:
        tiled: the whole rewritten model, every node annotated with fl.placement / fl.path.
        device: what runs on the device.
        edge: what runs on the edge.
        sends: per path in run order (a single entry without FL), the tensors it sends.
        stages: file name -> model, for --emit-stages (empty otherwise).
        stage_index: per path, its stage files and tensors, for stages/stages.json.
    """

    tiled: onnx.ModelProto
    device: onnx.ModelProto
    edge: onnx.ModelProto
    sends: tuple[tuple[int | None, tuple[str, ...]], ...]
    stages: dict[str, onnx.ModelProto]
    stage_index: tuple[dict, ...]


# IR 3 wants every initializer listed as a graph input, which exported graphs do not do.
MIN_IR_VERSION = 4


def to_model(graph: gs.Graph, template: onnx.ModelProto) -> onnx.ModelProto:
    """Export `graph` with the template's opsets and IR version (at least IR 4)."""
    model = gs.export_onnx(graph)
    model.ir_version = max(template.ir_version, MIN_IR_VERSION)
    del model.opset_import[:]
    model.opset_import.extend(template.opset_import)
    model.producer_name = PRODUCER
    return model


def check_emitted(path: Path, label: str) -> None:
    """Run onnx.checker (full_check: strict shape inference too) on a written model.

    Checking the file rather than the proto avoids serializing large models once more.

    Raises:
        InternalError: the model fails the check.
    """
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        first = str(e).strip().splitlines()[0][:300]
        raise InternalError(f"{label} fails onnx.checker: {first}") from e


def fused_prefix(model: onnx.ModelProto, fused: str) -> onnx.ModelProto:
    """The part of `model` that computes `fused` from the model's inputs.

    Verification compares F through these small models instead of exposing F on the whole
    original and tiled models, which for a large classifier means two more full copies.
    """
    graph = gs.import_onnx(model)
    inputs = [t.name for t in graph.inputs]
    return to_model(extract(graph, inputs, [fused], f"the subgraph computing {fused}"), model)


def annotate(model: onnx.ModelProto, placement: dict[str, tuple[str, str]], summary: dict) -> None:
    """Write `fl.placement` / `fl.path` on every node and the plan summary on the model."""
    for node in model.graph.node:
        where, path = placement.get(node.name, ("edge", ""))
        del node.metadata_props[:]
        for key, value in (("fl.placement", where), ("fl.path", path)):
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value
    del model.metadata_props[:]
    for key, value in summary.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"fl.{key}", str(value)


def emit_fused(
    normalized: onnx.ModelProto, plan: FusedPlan, summary: dict, *, stages: bool
) -> Emitted:
    """The models of a plan with fused layers.

    Args:
        normalized: the normalized model the plan was made for.
        plan: the plan.
        summary: key/values for the tiled model's metadata.
        stages: also build the per-path stage models.

    Returns:
        The emitted models.
    """
    tiled = tile_graph(gs.import_onnx(normalized), plan.tiling)
    cuts = list(plan.schedule.cuts)
    order = list(plan.schedule.order)
    sends = path_sends(plan.costs.crossing, order, cuts)
    flat = [name for _, names in sends for name in names]
    device_graph, edge_graph = split(tiled.graph, device_nodes(tiled, cuts), flat)
    tiled_model = to_model(tiled.graph, normalized)
    annotate(tiled_model, placement_of(tiled, cuts), summary)
    device = to_model(device_graph, normalized)
    edge = to_model(edge_graph, normalized)
    stage_models: dict[str, onnx.ModelProto] = {}
    index: list[dict] = []
    if stages:
        stage_models, index = _stages(tiled.graph, normalized, plan, sends)
    return Emitted(
        tiled_model,
        device,
        edge,
        tuple((p, tuple(names)) for p, names in sends),
        stage_models,
        tuple(index),
    )


def _stages(
    graph: gs.Graph,
    normalized: onnx.ModelProto,
    plan: FusedPlan,
    sends: list[tuple[int, list[str]]],
) -> tuple[dict[str, onnx.ModelProto], list[dict]]:
    """Per-path device and edge stages and the fuse stage (DESIGN §3, --emit-stages)."""
    x = [t.name for t in graph.inputs]
    outputs = [t.name for t in graph.outputs]
    last = len(plan.candidate.block)
    models: dict[str, onnx.ModelProto] = {}
    index = []
    f_tiles = [tile_tensor_name(p, plan.candidate.tensor) for p in range(plan.tiling.num_paths)]
    for p, names in sends:
        device_name = f"stages/device_p{p}.onnx"
        models[device_name] = to_model(extract(graph, x, names, device_name), normalized)
        edge_name = None
        if plan.schedule.cuts[p] < last:
            edge_name = f"stages/edge_p{p}.onnx"
            sub = extract(graph, names, [f_tiles[p]], edge_name)
            models[edge_name] = to_model(sub, normalized)
        index.append(
            {
                "path": p,
                "device": device_name,
                "sends": list(names),
                "edge": edge_name,
                "fused_tile": f_tiles[p],
            }
        )
    fuse = extract(graph, f_tiles, outputs, "stages/edge_fuse.onnx")
    models["stages/edge_fuse.onnx"] = to_model(fuse, normalized)
    return models, index


def emit_single_cut(
    normalized: onnx.ModelProto, cut: SingleCut, node_order: tuple[str, ...], summary: dict
) -> Emitted:
    """The models of a plan without fused layers (NFL, local-only or full offload)."""
    graph = gs.import_onnx(normalized)
    on_device, sends = prepare_single_cut(graph, set(node_order[: cut.index]))
    device_graph, edge_graph = split(graph, on_device, sends)
    tiled_model = to_model(graph, normalized)
    placement = {n.name: ("device" if n.name in on_device else "edge", "") for n in graph.nodes}
    annotate(tiled_model, placement, summary)
    device = to_model(device_graph, normalized)
    edge = to_model(edge_graph, normalized)
    return Emitted(tiled_model, device, edge, ((None, tuple(sends)),), {}, ())
