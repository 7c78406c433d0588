"""Costs of the untiled model: per-node FLOPs, the single cuts, and the non-FL baselines.

A single cut k runs the first k nodes (topological order) on the device and sends what they
produce that the rest reads. k = 0 is full offload (the raw input is sent), k = N is
local-only (nothing is sent), and NFL is the best cut at which exactly one tensor crosses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from flcompile.costs.flops import node_flops, tensor_bytes
from flcompile.costs.link import LinkModel
from flcompile.costs.node_cost import ComputeModel, NodeWork, node_work
from flcompile.costs.node_key import activation_bytes, node_key
from flcompile.costs.wire import DEFAULT_SEND_DTYPE, wire_bytes
from flcompile.passes.cuts import tensors_crossing_each_cut

#: The label (plan.json's `nfl_plan.cut`) of the cut that runs everything on the device.
LOCAL_ONLY = "local-only"


@dataclass(frozen=True)
class SingleCut:
    """One cut of the untiled model and its times.

    Attributes:
        index: how many nodes run on the device.
        tensors: the tensors that cross (graph inputs for k = 0, graph outputs for k = N).
        nbytes: their total size.
        device_s, link_s, edge_s, return_s: the times of each stage.
    """

    index: int
    tensors: tuple[str, ...]
    nbytes: float
    device_s: float
    link_s: float
    edge_s: float
    return_s: float
    local: bool = False

    @property
    def label(self) -> str:
        """ "full-offload", "local-only" or the name of the tensor sent."""
        if self.index == 0:
            return "full-offload"
        return LOCAL_ONLY if self.local else self.tensors[0]

    @property
    def total_s(self) -> float:
        """Latency of the cut: the stages run one after another."""
        return self.device_s + self.link_s + self.edge_s + self.return_s


@dataclass(frozen=True, eq=False)
class ModelCosts:
    """Per-node FLOPs of the whole model in topological order, and its output bytes.

    Attributes:
        nodes: node names in topological order.
        flops: (N,) FLOPs per node.
        output_bytes: bytes of the model's outputs (returned as they are).
        cuts: per cut k, (k, the tensors that cross it, their bytes in the wire dtype).
        keys: each node's law key, for a measured compute model.
        node_bytes: (N,) each node's activation bytes, for a measured compute model.
        send_dtype: the wire dtype the cut bytes are counted in (`flcompile.costs.wire`).
    """

    nodes: tuple[str, ...]
    flops: np.ndarray
    output_bytes: float
    cuts: tuple[tuple[int, tuple[str, ...], float], ...]
    keys: tuple[str, ...] = ()
    node_bytes: np.ndarray | None = None

    @property
    def work(self) -> NodeWork:
        """What each node computes, for a compute model."""
        return node_work(self.keys, self.flops, self.node_bytes)

    send_dtype: str = DEFAULT_SEND_DTYPE

    def edge_s(self, names: set[str], compute: ComputeModel) -> float:
        """Edge seconds of the named nodes."""
        mask = np.array([n in names for n in self.nodes], bool)
        return compute.edge_total_s(self.work.select(mask))


def model_costs(graph: gs.Graph, send_dtype: str = DEFAULT_SEND_DTYPE) -> ModelCosts:
    """Count FLOPs per node and find every cut position with what crosses it.

    Args:
        graph: the normalized, toposorted graph with inferred shapes.
        send_dtype: the wire dtype the cut bytes are counted in.

    Returns:
        The whole model's costs.
    """
    nodes = list(graph.nodes)
    flops = np.array([node_flops(n) for n in nodes], float)
    last_use: dict[str, int] = {t.name: len(nodes) for t in graph.outputs}
    for i, node in enumerate(nodes):
        for t in node.inputs:
            if t.name and not isinstance(t, gs.Constant):
                last_use[t.name] = max(last_use.get(t.name, -1), i)
    produced = {t.name: -1 for t in graph.inputs if not isinstance(t, gs.Constant)}
    sizes = {t.name: wire_bytes(t, send_dtype) or 0 for t in graph.inputs}
    for i, node in enumerate(nodes):
        for o in node.outputs:
            if o.name:
                produced[o.name] = i
                sizes[o.name] = wire_bytes(o, send_dtype) or 0
    crossing = tensors_crossing_each_cut(list(produced), produced, last_use, len(nodes))
    cuts = [(k, c, float(sum(sizes[t] for t in c))) for k, c in enumerate(crossing)]
    output_bytes = float(sum(tensor_bytes(t) or 0 for t in graph.outputs))
    return ModelCosts(
        tuple(n.name for n in nodes),
        flops,
        output_bytes,
        tuple(cuts),
        tuple(node_key(n) for n in nodes),
        np.array([activation_bytes(n) for n in nodes], float),
        send_dtype,
    )


def single_cuts(costs: ModelCosts, compute: ComputeModel, link: LinkModel) -> list[SingleCut]:
    """Times of every cut at which one tensor crosses, plus full offload and local-only."""
    step_dev = compute.device_nodes_s(costs.work)
    step_edge = compute.edge_nodes_s(costs.work)
    last = len(costs.nodes)
    on_device = np.arange(last + 1, dtype=float)  # cut k: k nodes on the device, one run each side
    device = np.concatenate([[0.0], np.cumsum(step_dev)]) + compute.device_run_s(on_device)
    edge = np.concatenate([np.cumsum(step_edge[::-1])[::-1], [0.0]])
    edge = edge + compute.edge_run_s(last - on_device)
    result = []
    for k, tensors, nbytes in costs.cuts:
        if len(tensors) != 1 and k not in (0, last):
            continue
        local = k == last
        result.append(
            SingleCut(
                index=k,
                tensors=tensors,
                nbytes=nbytes,
                device_s=float(device[k]) + (0.0 if local else link.device_s(nbytes)),
                link_s=0.0 if local else link.send_s(nbytes),
                edge_s=float(edge[k]),
                return_s=0.0 if local else link.return_s(costs.output_bytes),
                local=local,
            )
        )
    return result


@dataclass(frozen=True)
class Baselines:
    """The plans without fused layers, as docs/design.md §6's baselines{}."""

    local: SingleCut
    full_offload: SingleCut
    nfl: SingleCut

    def to_json(self) -> dict:
        """The plan.json form."""
        return {
            "local_s": self.local.total_s,
            "full_offload_s": self.full_offload.total_s,
            "nfl_s": self.nfl.total_s,
            "nfl_cut": self.nfl.label,
        }


def baselines(costs: ModelCosts, compute: ComputeModel, link: LinkModel) -> Baselines:
    """Local-only, full offload and the best single cut (NFL, which includes both)."""
    cuts = single_cuts(costs, compute, link)
    by_index = {c.index: c for c in cuts}
    nfl = min(cuts, key=lambda c: (c.total_s, -c.index))
    return Baselines(by_index[len(costs.nodes)], by_index[0], nfl)
