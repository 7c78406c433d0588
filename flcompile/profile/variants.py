"""The models a profile measures: the model itself and the stage models of its tiled rewrites.

A tiled rewrite is the compiler's own: the best plan at a fixed grid, emitted in memory with
its per-path stages (`--emit-stages`: each path's device and edge stage, and the fuse with
the rest of the model), so the profile measures what the runtime runs, at the tile sizes
plans use. Each stage is timed on its own; each of its measured nodes becomes a `Sample` of
its law key, FLOPs and bytes (`flcompile.costs`), and the stage's run overhead (its wall
time less its kernels) a point of the run law (`flcompile.costs.run_overhead`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import onnx
import onnx_graphsurgeon as gs

from flcompile.compile import Analysis
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.flops import node_flops
from flcompile.costs.node_key import activation_bytes, node_key
from flcompile.emit import STAGES_DIR
from flcompile.errors import FlCompileError
from flcompile.profile.law import Sample
from flcompile.profile.trace import profile_model
from flcompile.search import SearchOptions
from flcompile.verify import make_feeds

logger = logging.getLogger(__name__)

#: The grids measured by default: the untiled model, then tiles of two sizes.
DEFAULT_GRIDS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 2))
#: The stage name of the untiled model, measured whole.
WHOLE = "model"


@dataclass(frozen=True)
class Stage:
    """One measured stage model ("device_p0", "edge_p0", "edge_fuse", or the whole model).

    Attributes:
        name: the stage's name.
        samples: its measured nodes.
        run_overhead_s: what one run of it cost beyond its kernels.
    """

    name: str
    samples: tuple[Sample, ...]
    run_overhead_s: float = 0.0

    @property
    def total_s(self) -> float:
        """The measured seconds of all its nodes."""
        return sum(s.seconds for s in self.samples)


@dataclass(frozen=True, eq=False)
class Variant:
    """One grid's measured stages."""

    grid: tuple[int, int]
    stages: tuple[Stage, ...]

    @property
    def samples(self) -> tuple[Sample, ...]:
        """Every measured node of every stage."""
        return tuple(s for stage in self.stages for s in stage.samples)

    @property
    def total_s(self) -> float:
        """The measured seconds of all its nodes."""
        return sum(stage.total_s for stage in self.stages)


def run_points(variants: list[Variant]) -> list[tuple[int, float]]:
    """(nodes, run overhead) of every measured stage: the points of the run law."""
    return [(len(s.samples), s.run_overhead_s) for v in variants for s in v.stages]


def stage_models(analysis: Analysis, grid: tuple[int, int]) -> dict[str, onnx.ModelProto] | None:
    """The stage models of the best plan at `grid` (at the paper's costs), or None when the
    model cannot be tiled at that grid or its best plan there has no fused layers.

    Args:
        analysis: the analysed model.
        grid: (rows, columns); (1, 1) is the normalized model itself, one stage.

    Returns:
        Stage name -> model.
    """
    if grid == (1, 1):
        return {WHOLE: analysis.normalized}
    try:
        result = analysis.search(ComputeModel(), LinkModel(1.8), SearchOptions(grid=grid))
    except FlCompileError as e:
        logger.info("no tiling at %dx%d: %s", *grid, e)
        return None
    plan = result.plan
    summary = plan.metadata(result.baselines.nfl.total_s)
    emitted = plan.emit(analysis.normalized, analysis.costs.nodes, summary, stages=True)
    prefix = f"{STAGES_DIR}/"
    stages = {
        name.removeprefix(prefix).removesuffix(".onnx"): model
        for name, model in sorted(emitted.stages.items())
        if name.endswith(".onnx")
    }
    return stages or None  # a plan without fused layers has no stages


def samples(model: onnx.ModelProto, seconds: dict[str, float]) -> tuple[Sample, ...]:
    """Each measured node of `model` as a Sample (its key, FLOPs and bytes from the graph).

    Args:
        model: the model measured.
        seconds: node name -> its measured seconds.

    Returns:
        The samples, in graph order.
    """
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    return tuple(
        Sample(
            node.op, node_flops(node), seconds[node.name], activation_bytes(node), node_key(node)
        )
        for node in graph.nodes
        if node.name in seconds
    )


def measure(
    analysis: Analysis,
    threads: int,
    grids: tuple[tuple[int, int], ...] = DEFAULT_GRIDS,
    runs: int = 5,
    repeats: int = 1,
    slowdown: float = 1.0,
) -> list[Variant]:
    """Measure the model and the stages of its tiled rewrites.

    Every stage is timed `repeats` times, each time in a fresh session and after all the
    others, and each node, and each stage's run overhead, keeps its fastest run: a
    machine's other load comes and goes, and only ever adds time.

    Args:
        analysis: the analysed model.
        threads: onnxruntime's intra-op threads.
        grids: the grids to measure.
        runs: timed runs per session.
        repeats: sessions per stage.
        slowdown: every time is multiplied by it (a device that many times slower).

    Returns:
        One Variant per grid measured.
    """
    models = {grid: stage_models(analysis, grid) for grid in grids}
    models = {grid: stages for grid, stages in models.items() if stages is not None}
    times: dict[tuple, list[dict[str, float]]] = {}
    overheads: dict[tuple, list[float]] = {}
    for _ in range(repeats):
        for grid, stages in models.items():
            for name, model in stages.items():
                measured = profile_model(model, make_feeds(model), threads, runs, min)
                times.setdefault((grid, name), []).append(
                    {node: t.seconds * slowdown for node, t in measured.nodes.items()}
                )
                overheads.setdefault((grid, name), []).append(measured.run_overhead_s * slowdown)
    return [
        Variant(
            grid,
            tuple(
                Stage(name, samples(model, _fastest(times[grid, name])), min(overheads[grid, name]))
                for name, model in stages.items()
            ),
        )
        for grid, stages in models.items()
    ]


def _fastest(repeats: list[dict[str, float]]) -> dict[str, float]:
    """Each node's least time over the repeats that timed it."""
    nodes = {node for r in repeats for node in r}
    return {node: min(r[node] for r in repeats if node in r) for node in nodes}
