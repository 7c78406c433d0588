"""A compiled OUT as stages to run: per path in run order, what it sends and what its edge yields.

From `stages/stages.json` where `--emit-stages` wrote it, else from plan.json alone (the
stage models are then cut out of device.onnx and edge.onnx, see `stage_models`). A plan
without fused layers is one path, numbered 0, whose device stage is device.onnx and whose
edge stage is edge.onnx, yielding the model's outputs; it has no fuse stage
(docs/design.md §11).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flcompile.costs.untiled import LOCAL_ONLY
from flcompile.deploy.protocol import model_name
from flcompile.errors import BadInputError, user_path_errors
from flcompile.passes.tile import tile_tensor_name

PLAN_JSON = "plan.json"
STAGES_JSON = "stages/stages.json"


@dataclass(frozen=True)
class PathStage:
    """One path of a plan, as the runtime sees it.

    Attributes:
        path: the path's grid index (0 for a plan without fused layers).
        order: its position in the run order.
        device: its device model's file, relative to OUT; None where it is to be cut out
            of device.onnx, or where the path sends nothing (see `sends`).
        edge: its edge model's file, relative to OUT; None where it is to be cut out of
            edge.onnx, or where the path has no edge stage (see `has_edge`).
        has_edge: whether the edge runs part of the path; without it, the path sends its
            tile of F, `result[0]`, itself.
        sends: the tensors the device sends, in order. Under edge-side reuse a path may
            send nothing (earlier paths sent its whole region): the device then runs
            nothing for it, and the edge runs its stage right after that of the path before it.
        result: what the edge stage yields: the path's tile of F, or the model's outputs
            for a plan without fused layers.
        held: under edge-side reuse, what earlier paths of the frame sent (or, under
            intermediate reuse, computed) that this path's edge stage reads too.
        keeps: under intermediate reuse, what this path's edge stage computes that later
            paths read: the stage yields them after `result`.
    """

    path: int
    order: int
    device: str | None
    edge: str | None
    has_edge: bool
    sends: tuple[str, ...]
    result: tuple[str, ...]
    held: tuple[str, ...] = ()
    keeps: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class PlanIndex:
    """What the device and the edge run for one compiled plan.

    Attributes:
        out: the compiled OUT directory.
        name: the Triton model name (`protocol.model_name`).
        plan: plan.json, loaded.
        inputs: the model's input names (every device stage takes them).
        outputs: the model's output names.
        paths: the paths in run order.
        fused: whether the plan has fused layers (then a fuse stage joins the tiles).
        fuse: the fuse model's file relative to OUT; None where it is to be cut out of
            edge.onnx, or without fused layers.
        fuse_inputs: the fuse stage's inputs, the tiles of F by path index (empty without
            fused layers).
    """

    out: Path
    name: str
    plan: dict
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    paths: tuple[PathStage, ...]
    fused: bool
    fuse: str | None
    fuse_inputs: tuple[str, ...]

    @property
    def predicted_s(self) -> float:
        """The plan's predicted latency, at the link and costs it was compiled for."""
        return float(self.plan["predicted_s"])

    @property
    def local(self) -> bool:
        """Whether the plan runs the whole model on the device (local-only): nothing is sent."""
        return not self.fused and self.plan["nfl_plan"]["cut"] == LOCAL_ONLY

    def stage(self, path: int) -> PathStage | None:
        """The path with grid index `path`, or None."""
        return next((s for s in self.paths if s.path == path), None)


def _read_json(path: Path, what: str) -> dict:
    with user_path_errors(path, f"read {what}", hint="pass the OUT directory flcompile wrote"):
        text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except ValueError as e:
        raise BadInputError(f"{path}: not valid JSON ({e})", hint="recompile the model") from e
    if not isinstance(value, dict) or value.get("schema") != 1:
        raise BadInputError(f"{path}: not a schema-1 {what}", hint="recompile the model")
    return value


def load_index(out: str | Path) -> PlanIndex:
    """Read a compiled OUT's plan and stages.

    Args:
        out: the directory `flcompile MODEL -o OUT` wrote.

    Returns:
        The plan's stages in run order.

    Raises:
        BadInputError: OUT is missing, is not a compiled plan, or its files disagree.
    """
    index = _load_index(Path(out))
    if index.paths and not index.paths[0].sends:
        raise BadInputError(
            f"{out}: the first path in run order, {index.paths[0].path}, sends nothing",
            hint="recompile the model",
        )
    return index


def _load_index(out: Path) -> PlanIndex:
    if not (out / PLAN_JSON).is_file():
        raise BadInputError(
            f"{out}: not a compiled plan (no {PLAN_JSON})",
            hint="pass the OUT directory of `flcompile MODEL -o OUT`",
        )
    plan = _read_json(out / PLAN_JSON, PLAN_JSON)
    try:
        inputs = tuple(i["name"] for i in plan["model"]["inputs"])
        outputs = tuple(o["name"] for o in plan["model"]["outputs"])
        if not plan["paths"]:
            return _single_cut(out, plan, inputs, outputs)
        if (out / STAGES_JSON).is_file():
            return _from_stages(out, plan, _read_json(out / STAGES_JSON, "stages.json"))
        return _from_plan(out, plan, inputs, outputs)
    except (KeyError, TypeError, ValueError) as e:
        raise BadInputError(
            f"{out}: plan.json or stages.json lacks what a runtime needs ({type(e).__name__}: {e})",
            hint="recompile the model with this flcompile",
        ) from e


def _single_cut(out: Path, plan: dict, inputs: tuple, outputs: tuple) -> PlanIndex:
    sends = tuple(plan["nfl_plan"]["sends"])
    stage = PathStage(0, 0, "device.onnx", "edge.onnx", True, sends, outputs)
    return PlanIndex(out, model_name(plan), plan, inputs, outputs, (stage,), False, None, ())


def _from_plan(out: Path, plan: dict, inputs: tuple, outputs: tuple) -> PlanIndex:
    fused = plan["fused"]["tensor"]
    stages = []
    for p in sorted(plan["paths"], key=lambda p: p["order"]):
        tile = tile_tensor_name(p["index"], fused)
        sends = tuple(s["tensor"] for s in p["sends"])
        has_edge = sends != (tile,)
        held, keeps = tuple(p.get("held", ())), tuple(p.get("keeps", ()))
        stages.append(
            PathStage(p["index"], p["order"], None, None, has_edge, sends, (tile,), held, keeps)
        )
    tiles = tuple(tile_tensor_name(p, fused) for p in range(len(plan["paths"])))
    return PlanIndex(out, model_name(plan), plan, inputs, outputs, tuple(stages), True, None, tiles)


def _from_stages(out: Path, plan: dict, index: dict) -> PlanIndex:
    stages = tuple(
        PathStage(
            int(p["path"]),
            int(p["order"]),
            f"stages/{p['device']}" if p["device"] else None,
            f"stages/{p['edge']}" if p["edge"] else None,
            p["edge"] is not None,
            tuple(p["sends"]),
            (p["fused_tile"],),
            tuple(p.get("held", ())),
            tuple(p.get("keeps", ())),
        )
        for p in sorted(index["paths"], key=lambda p: p["order"])
    )
    if [s.path for s in stages] != list(index["run_order"]):
        raise BadInputError(f"{out}/{STAGES_JSON}: its paths do not follow its run_order")
    planned = {p["index"]: tuple(s["tensor"] for s in p["sends"]) for p in plan["paths"]}
    if planned != {s.path: s.sends for s in stages}:
        raise BadInputError(
            f"{out}: stages.json and plan.json disagree on what the paths send",
            hint="recompile the model",
        )
    fuse = index["fuse"]
    return PlanIndex(
        out,
        model_name(plan),
        plan,
        tuple(index["inputs"]),
        tuple(fuse["outputs"]),
        stages,
        True,
        f"stages/{fuse['model']}",
        tuple(fuse["inputs"]),
    )
