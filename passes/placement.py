"""Placement of a tiled graph's nodes: which run on the device and which tensors cross.

A path with cut k runs its input Slice and its first k node copies on the device; a crop
Slice runs where the node it feeds runs; the fuse and everything after it run on the edge.
"""

from __future__ import annotations

from collections.abc import Sequence

from flcompile.passes.tile import TiledGraph, tile_tensor_name


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
