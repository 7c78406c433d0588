"""The models a profile measures: the model itself and its tiled rewrites at a few grids.

A tiled rewrite is the compiler's own: the best plan at a fixed grid, emitted in memory
(`Emitted.tiled`), so the profile sees tiles of the sizes plans will run. Each measured
node becomes a `Sample` of its op type, its FLOPs (`flcompile.costs.flops`) and seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from flcompile.compile import Analysis
from flcompile.costs import ComputeModel, LinkModel
from flcompile.costs.flops import node_flops
from flcompile.costs.node_key import activation_bytes, node_key
from flcompile.errors import FlCompileError
from flcompile.profile.law import Sample
from flcompile.profile.trace import profile_model
from flcompile.search import SearchOptions

logger = logging.getLogger(__name__)

#: The grids measured by default: the untiled model, then tiles of two sizes.
DEFAULT_GRIDS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 2))


@dataclass(frozen=True, eq=False)
class Variant:
    """One measured model: its grid, and each of its nodes' samples."""

    grid: tuple[int, int]
    samples: tuple[Sample, ...]

    @property
    def total_s(self) -> float:
        """The measured seconds of all its nodes."""
        return sum(s.seconds for s in self.samples)


def tiled_model(analysis: Analysis, grid: tuple[int, int]) -> onnx.ModelProto | None:
    """The model tiled at `grid` (the best plan there, at the paper's costs), or None when
    the model cannot be tiled at that grid.

    Args:
        analysis: the analysed model.
        grid: (rows, columns); (1, 1) is the normalized model itself.

    Returns:
        The tiled model, or None.
    """
    if grid == (1, 1):
        return analysis.normalized
    try:
        result = analysis.search(ComputeModel(), LinkModel(1.8), SearchOptions(grid=grid))
    except FlCompileError as e:
        logger.info("no tiling at %dx%d: %s", *grid, e)
        return None
    plan = result.plan
    summary = plan.metadata(result.baselines.nfl.total_s)
    return plan.emit(analysis.normalized, analysis.costs.nodes, summary, stages=False).tiled


def samples(model: onnx.ModelProto, times: Mapping[str, object]) -> tuple[Sample, ...]:
    """Each measured node of `model` as a Sample (its key, FLOPs and bytes from the graph).

    Args:
        model: the model measured.
        times: node name -> `NodeTime`, from `profile_model`.

    Returns:
        The samples, in graph order.
    """
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
    return tuple(
        Sample(
            node.op,
            node_flops(node),
            times[node.name].seconds,
            activation_bytes(node),
            node_key(node),
        )
        for node in graph.nodes
        if node.name in times
    )


def measure(
    analysis: Analysis,
    feeds: Mapping[str, np.ndarray],
    threads: int,
    grids: tuple[tuple[int, int], ...] = DEFAULT_GRIDS,
    runs: int = 5,
) -> list[Variant]:
    """Measure the model at each grid it can be tiled at.

    Args:
        analysis: the analysed model.
        feeds: the model's inputs.
        threads: onnxruntime's intra-op threads.
        grids: the grids to measure.
        runs: timed runs per model.

    Returns:
        One Variant per grid measured.
    """
    variants = []
    for grid in grids:
        model = tiled_model(analysis, grid)
        if model is None:
            continue
        times = profile_model(model, feeds, threads, runs)
        variants.append(Variant(grid, samples(model, times)))
    return variants
