"""Build the emitted models of a plan: device.onnx, edge.onnx, tiled.onnx and the stages.

Every node of every emitted model carries `fl.placement` and `fl.path` metadata, and every
model the plan summary.

Every model keeps the source's opset and IR version; `check_emitted` runs
`onnx.checker.check_model(full_check=True)` (strict shape inference) on each written model.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import onnx
import onnx_graphsurgeon as gs

from flcompile.costs.untiled import SingleCut
from flcompile.costs.wire import DEFAULT_SEND_DTYPE, FLOAT32
from flcompile.errors import InternalError
from flcompile.intermediate_pieces import intermediate_split
from flcompile.model_io import export_graph
from flcompile.passes.placement import placement_of, tile_and_split
from flcompile.passes.split import extract, prepare_single_cut, split
from flcompile.passes.tile import tile_tensor_name
from flcompile.reuse_pieces import reuse_tile_and_split
from flcompile.send_casts import send_casts

if TYPE_CHECKING:  # the plans emit through this module
    from flcompile.plans.fused import FusedPlan

PRODUCER = "flcompile"
STAGES_DIR = "stages"
STAGES_JSON = f"{STAGES_DIR}/stages.json"
STAGES_SCHEMA = 1
FUSE_STAGE = "edge_fuse.onnx"


@dataclass(frozen=True, eq=False)
class Emitted:
    """The models of one plan; every node of every model carries fl.placement / fl.path.

    Attributes:
        tiled: the whole rewritten model (written only with --emit-tiled; verification reads
            the fused tensor from it).
        device: what runs on the device.
        edge: what runs on the edge.
        sends: per path in run order (a single entry without FL), the tensors it sends.
        stages: path under OUT -> model, for --emit-stages (empty otherwise).
        stages_json: the content of stages/stages.json (None without stages).
        cast_sends: the sent tensors cast for the link (`--send-dtype`), name -> wire dtype.
    """

    tiled: onnx.ModelProto
    device: onnx.ModelProto
    edge: onnx.ModelProto
    sends: tuple[tuple[int | None, tuple[str, ...]], ...]
    stages: dict[str, onnx.ModelProto]
    stages_json: dict | None
    cast_sends: dict[str, str] = field(default_factory=dict)


# IR 3 wants every initializer listed as a graph input, which exported graphs do not do.
MIN_IR_VERSION = 4


def to_model(graph: gs.Graph, template: onnx.ModelProto) -> onnx.ModelProto:
    """Export `graph` with the template's opsets and IR version (at least IR 4)."""
    model = export_graph(graph)
    model.ir_version = max(template.ir_version, MIN_IR_VERSION)
    del model.opset_import[:]
    model.opset_import.extend(template.opset_import)
    model.producer_name = PRODUCER
    return model


def check_emitted(model: Path | bytes, label: str) -> None:
    """Run onnx.checker (full_check: strict shape inference too) on a written model.

    Args:
        model: the bytes that were written (checked without reading the file back), or the
            file's path (needed for a model with external data).
        label: the file's name, for the message.

    Raises:
        InternalError: the model fails the check.
    """
    try:
        onnx.checker.check_model(model if isinstance(model, bytes) else str(model), full_check=True)
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
    """Write `fl.placement` / `fl.path` on every node and the plan summary on the model.

    Args:
        model: an emitted model, annotated in place.
        placement: node name -> (placement, path); a node not listed runs on the edge, in no
            path (the fuse and the rest of the model).
        summary: key/values written as the model's `fl.{key}` metadata.
    """
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


def annotated_model(
    graph: gs.Graph, template: onnx.ModelProto, placement: dict[str, tuple[str, str]], summary: dict
) -> onnx.ModelProto:
    """`to_model(graph, template)`, annotated by `annotate(model, placement, summary)`."""
    model = to_model(graph, template)
    annotate(model, placement, summary)
    return model


def emit_fused(
    normalized: onnx.ModelProto,
    plan: FusedPlan,
    summary: dict,
    *,
    stages: bool,
    send_dtype: str = DEFAULT_SEND_DTYPE,
) -> Emitted:
    """The models of a plan with fused layers.

    Args:
        normalized: the normalized model the plan was made for.
        plan: the plan.
        summary: key/values for every emitted model's metadata.
        stages: also build the per-path stage models.
        send_dtype: the wire dtype: the device and stage models cast what they send to it,
            and the models that receive it cast it back.

    Returns:
        The emitted models.
    """
    cuts = list(plan.schedule.cuts)
    graph, order = gs.import_onnx(normalized), plan.schedule.order
    keeps = None
    if plan.computed is not None:
        parts = intermediate_split(graph, plan.tiling, plan.computed)
        placed, keeps = parts.placement, parts.keeps
    else:
        if plan.reuse:
            parts = reuse_tile_and_split(graph, plan.tiling, cuts, order, plan.piece_sends())
        else:
            parts = tile_and_split(graph, plan.tiling, cuts, order)
        placed = placement_of(parts.tiled, cuts)
    tiled, sends, device_graph, edge_graph = parts.tiled, parts.sends, parts.device, parts.edge
    casts = send_casts(device_graph, sends, send_dtype)
    placement = {**placed, **casts.placement}
    export = functools.partial(
        annotated_model, template=normalized, placement=placement, summary=summary
    )
    stage_models: dict[str, onnx.ModelProto] = {}
    index = None
    if stages:
        stage_graphs, index = stage_graphs_of(
            tiled.graph, plan, sends, getattr(parts, "held", None), keeps
        )
        stage_models = {
            f"{STAGES_DIR}/{name}": export(casts.apply(g)) for name, g in stage_graphs.items()
        }
        index = casts.describe(index)
    return Emitted(
        export(tiled.graph),
        export(casts.apply(device_graph)),
        export(casts.apply(edge_graph)),
        tuple((p, tuple(names)) for p, names in sends),
        stage_models,
        index,
        casts.names(),
    )


def stage_graphs_of(
    graph: gs.Graph,
    plan: FusedPlan,
    sends: list[tuple[int, list[str]]],
    held: dict[int, tuple[str, ...]] | None = None,
    keeps: dict[int, tuple[str, ...]] | None = None,
) -> tuple[dict[str, gs.Graph], dict]:
    """Per-path device and edge stages, the fuse stage, and stages.json (docs/design.md §3).

    A runner needs stages.json alone: run `device_p{p}.onnx` for each p of `run_order` on the
    model's inputs; feed its outputs, named as in `sends`, to `edge_p{p}.onnx` (which returns
    `fused_tile`), or, where `edge` is null, use them as `fused_tile` directly; then feed the
    fused tiles to the fuse stage, whose outputs are the model's outputs.

    Args:
        graph: the tiled graph.
        plan: the plan it was tiled for.
        sends: per path in run order, the names of the tensors it sends.
        held: under edge-side reuse, per path the pieces earlier paths sent (or, under
            intermediate reuse, computed) that its edge stage also reads (stages.json lists
            them as the path's `held`); None otherwise.
        keeps: under intermediate reuse, per path the pieces its edge stage computes that
            later paths read: the stage returns them after its tile (stages.json's
            `keeps`); None otherwise.

    Returns:
        (file name under stages/ -> graph, the content of stages.json).
    """
    x = [t.name for t in graph.inputs]
    outputs = [t.name for t in graph.outputs]
    last = len(plan.candidate.block)
    graphs: dict[str, gs.Graph] = {}
    paths = []
    f_tiles = [tile_tensor_name(p, plan.candidate.tensor) for p in range(plan.tiling.num_paths)]
    for order, (p, names) in enumerate(sends):
        device_name = f"device_p{p}.onnx" if names else None
        if device_name is not None:
            graphs[device_name] = extract(graph, x, names, f"{STAGES_DIR}/{device_name}")
        edge_name = None
        reads = [*names, *(held or {}).get(p, ())]
        kept = list((keeps or {}).get(p, ()))
        if plan.schedule.cuts[p] < last:
            edge_name = f"edge_p{p}.onnx"
            results = [f_tiles[p], *kept]
            graphs[edge_name] = extract(graph, reads, results, f"{STAGES_DIR}/{edge_name}")
        elif list(names) != [f_tiles[p]]:
            raise InternalError(f"path {p} runs whole on the device but sends {names}")
        paths.append(
            {
                "path": p,
                "order": order,
                "device": device_name,
                "edge": edge_name,
                "sends": list(names),
                **({"held": list(held.get(p, ()))} if held is not None else {}),
                **({"keeps": kept} if keeps is not None else {}),
                "fused_tile": f_tiles[p],
            }
        )
    graphs[FUSE_STAGE] = extract(graph, f_tiles, outputs, f"{STAGES_DIR}/{FUSE_STAGE}")
    index = {
        "schema": STAGES_SCHEMA,
        "inputs": x,
        "run_order": [p for p, _ in sends],
        "paths": paths,
        "fuse": {"model": FUSE_STAGE, "inputs": f_tiles, "outputs": outputs},
    }
    return graphs, index


def emit_single_cut(
    normalized: onnx.ModelProto,
    cut: SingleCut,
    node_order: tuple[str, ...],
    summary: dict,
    send_dtype: str = DEFAULT_SEND_DTYPE,
) -> Emitted:
    """The models of a plan without fused layers (NFL, local-only or full offload); what
    crosses the cut is cast to `send_dtype` as in `emit_fused`, except local-only's outputs,
    which stay on the device."""
    graph = gs.import_onnx(normalized)
    on_device, sends = prepare_single_cut(graph, set(node_order[: cut.index]))
    device_graph, edge_graph = split(graph, on_device, sends)
    casts = send_casts(device_graph, [(None, sends)], FLOAT32 if cut.local else send_dtype)
    placement = {n.name: ("device" if n.name in on_device else "edge", "") for n in graph.nodes}
    placement.update(casts.placement)
    tiled, device, edge = (
        annotated_model(g, normalized, placement, summary)
        for g in (graph, casts.apply(device_graph), casts.apply(edge_graph))
    )
    return Emitted(tiled, device, edge, ((None, tuple(sends)),), {}, None, casts.names())
