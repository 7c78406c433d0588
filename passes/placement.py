"""Placement of a tiled graph's nodes: which run on the device and which tensors cross.

A path with cut k runs its input Slice and its first k node copies on the device; a crop
Slice runs where the node it feeds runs; the fuse and everything after it run on the edge.
`tile_and_split` runs tile → placement → split, the steps every fused-layer plan takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import onnx_graphsurgeon as gs

from flcompile.passes.receptive_field import Tiling
from flcompile.passes.split import split
from flcompile.passes.tile import TiledGraph, tile_graph, tile_tensor_name


def device_nodes(tiled: TiledGraph, cuts: Sequence[int]) -> set[str]:
    """Names of the nodes of `tiled` that run on the device under `cuts` (indexed by path)."""
    names: set[str] = set()
    for p, cut in enumerate(cuts):
        names.add(tiled.input_slices[p])
        names.update(tiled.copies[p][:cut])
        names.update(crop for crop, feeds in tiled.crops[p].items() if feeds < cut)
    return names


def path_sends(
    crossing: Sequence[Sequence[str]], order: Sequence[int], cuts: Sequence[int]
) -> list[tuple[int, list[str]]]:
    """Per path in run order, the names of the tile tensors it sends.

    Args:
        crossing: for each cut k, the block tensors that cross it.
        order: path indices in run order.
        cuts: the cut of each path, indexed by path.

    Returns:
        (path, [tile tensor names]) in run order.
    """
    return [(p, [tile_tensor_name(p, t) for t in crossing[cuts[p]]]) for p in order]


def placement_of(tiled: TiledGraph, cuts: Sequence[int]) -> dict[str, tuple[str, str]]:
    """`fl.placement` and `fl.path` for every node of the tiled graph.

    Returns:
        node name -> ("device" | "edge", path index as text or "").
    """
    on_device = device_nodes(tiled, cuts)
    path_of: dict[str, str] = {}
    for p in range(len(cuts)):
        members = [tiled.input_slices[p], *tiled.copies[p], *tiled.crops[p]]
        path_of.update({name: str(p) for name in members})
    return {
        node.name: ("device" if node.name in on_device else "edge", path_of.get(node.name, ""))
        for node in tiled.graph.nodes
    }


@dataclass(frozen=True, eq=False)
class PathSplit:
    """A tiled graph and its device and edge parts.

    Attributes:
        tiled: the tiled graph (its misinferred shapes forgotten, as `split` leaves it).
        sends: per path in run order, the names of the tile tensors it sends.
        device: the device graph.
        edge: the edge graph.
    """

    tiled: TiledGraph
    sends: list[tuple[int, list[str]]]
    device: gs.Graph
    edge: gs.Graph


def tile_and_split(
    graph: gs.Graph, tiling: Tiling, cuts: Sequence[int], order: Sequence[int]
) -> PathSplit:
    """Tile `graph` (in place) by `tiling` and split it at each path's cut.

    Args:
        graph: the normalized graph the tiling was made for.
        tiling: the block, grid and regions.
        cuts: the cut of each path, indexed by path.
        order: path indices in run order.

    Returns:
        The tiled graph, the sends and the two parts.
    """
    tiled = tile_graph(graph, tiling)
    sends = path_sends(tiling.block.crossing, order, cuts)
    flat = [name for _, names in sends for name in names]
    device, edge = split(tiled.graph, device_nodes(tiled, cuts), flat)
    return PathSplit(tiled, sends, device, edge)
