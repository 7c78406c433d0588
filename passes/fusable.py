"""Find the fusable prefix (docs/design.md §1) and the tensors F at which it can be fused.

The prefix is what is reachable from the spatial model input through local ops only. A
candidate F is a spatial tensor of the prefix that every input→output path passes through:
all of its ancestors are local and nothing but F leaves that block.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import networkx as nx
import onnx_graphsurgeon as gs

from flcompile.errors import UnsupportedModelError
from flcompile.passes.local_ops import LocalOp, classify, is_float

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusablePrefix:
    """The local prefix of a graph.

    Attributes:
        input: name of the spatial model input.
        input_axes: the input's (H, W) axes: (2, 3) for NCHW, (1, 2) for an NHWC input
            that the model transposes to NCHW first.
        nodes: names of the prefix's nodes, in topological order.
        ops: each prefix node's `LocalOp`.
        stops: "node (op): reason" for each node that reads the prefix but is not local.
    """

    input: str
    nodes: tuple[str, ...]
    ops: dict[str, LocalOp]
    stops: tuple[str, ...]
    input_axes: tuple[int, int] = (2, 3)


@dataclass(frozen=True)
class Candidate:
    """A tensor F the prefix can be fused at, with the block that computes it.

    Attributes:
        tensor: F's name.
        shape: F's NCHW shape (H and W static; a symbolic batch stays a name).
        block: the names of the nodes between the input and F, in topological order.
    """

    tensor: str
    shape: tuple[int, ...]
    block: tuple[str, ...]


NCHW_AXES = (2, 3)
NHWC_AXES = (1, 2)
NHWC_TO_NCHW = [0, 3, 1, 2]


def input_axes(x: gs.Tensor) -> tuple[int, int]:
    """The (H, W) axes of a 4-D model input: NHWC when every reader transposes it to NCHW."""
    readers = x.outputs
    nhwc = bool(readers) and all(
        n.op == "Transpose" and list(n.attrs.get("perm", [])) == NHWC_TO_NCHW for n in readers
    )
    return NHWC_AXES if nhwc else NCHW_AXES


def spatial_input(graph: gs.Graph, label: str) -> gs.Variable:
    """The model's one 4-D float input with static H and W (NCHW, or NHWC transposed first).

    Raises:
        UnsupportedModelError: there is none, or more than one, or H/W are dynamic.
    """
    inputs = [t for t in graph.inputs if not isinstance(t, gs.Constant)]
    four_d = [t for t in inputs if t.shape is not None and len(t.shape) == 4 and is_float(t)]
    if not four_d:
        described = ", ".join(f"{t.name}{list(t.shape or [])}" for t in inputs) or "none"
        raise UnsupportedModelError(
            f"{label}: no 4-D float (NCHW image) input; the inputs are {described}",
            hint="flcompile tiles CNNs that take an NCHW image",
        )
    if len(four_d) > 1:
        names = ", ".join(t.name for t in four_d)
        raise UnsupportedModelError(
            f"{label}: several 4-D inputs ({names}); flcompile tiles models with one image input",
            hint="export the model with a single image input",
        )
    x = four_d[0]
    axes = input_axes(x)
    if not all(isinstance(x.shape[a], int) for a in axes):
        raise UnsupportedModelError(
            f"{label}: input '{x.name}' has dynamic H/W {list(x.shape)}",
            hint=f"fix them with --input-shape {x.name}:1x3x224x224 (your sizes)",
        )
    if len(inputs) > 1:
        others = ", ".join(t.name for t in inputs if t is not x)
        raise UnsupportedModelError(
            f"{label}: inputs besides the image ({others}) are not supported",
            hint="export the model with the image as its only input",
        )
    return x


def find_prefix(graph: gs.Graph, label: str = "model") -> FusablePrefix:
    """Walk the toposorted `graph` from its spatial input through local ops.

    Args:
        graph: a normalized, toposorted graph with inferred shapes.
        label: how to name the model in messages.

    Returns:
        The fusable prefix, possibly empty.
    """
    x = spatial_input(graph, label)
    axes = input_axes(x)
    spatial_tensors: set[str] = {x.name}
    nodes: list[str] = []
    ops: dict[str, LocalOp] = {}
    stops: list[str] = []
    for node in graph.nodes:
        if not any(t.name in spatial_tensors for t in node.inputs):
            continue
        if axes == NHWC_AXES and node.inputs[0] is x:
            # NHWC -> NCHW moves no pixel within H and W: regions pass through unchanged.
            result: LocalOp | str = LocalOp()
        else:
            result = classify(node, lambda t: t.name in spatial_tensors)
        reads_outside = any(
            t.name and t.name not in spatial_tensors and not isinstance(t, gs.Constant)
            for t in node.inputs
        )
        if isinstance(result, LocalOp) and reads_outside:
            result = "it also reads a tensor from outside the fusable region"
        if isinstance(result, str):
            stops.append(f"{node.name} ({node.op}): {result}")
            continue
        nodes.append(node.name)
        ops[node.name] = result
        spatial_tensors.update(o.name for o in node.outputs if o.name)
    for stop in stops:
        log.info("fusable region ends at %s", stop)
    return FusablePrefix(x.name, tuple(nodes), ops, tuple(stops), axes)


def node_graph(graph: gs.Graph) -> nx.DiGraph:
    """The graph's nodes as a networkx DiGraph keyed by node name (edges follow tensors)."""
    dag = nx.DiGraph()
    dag.add_nodes_from(n.name for n in graph.nodes)
    for node in graph.nodes:
        for out in node.outputs:
            for consumer in out.outputs:
                dag.add_edge(node.name, consumer.name)
    return dag


def find_candidates(graph: gs.Graph, prefix: FusablePrefix) -> list[Candidate]:
    """Every tensor F of the prefix at which the model can be fused, shallowest first.

    Args:
        graph: the graph `prefix` was found in.
        prefix: its fusable prefix.

    Returns:
        The candidates in topological order of their producers.
    """
    by_name = {n.name: n for n in graph.nodes}
    in_prefix = set(prefix.nodes)
    dag = node_graph(graph)
    order = {name: i for i, name in enumerate(prefix.nodes)}
    graph_outputs = {t.name for t in graph.outputs}
    x = graph.tensors()[prefix.input]
    candidates = []
    for name in prefix.nodes:
        node = by_name[name]
        block = nx.ancestors(dag, name) | {name}
        if not block <= in_prefix or any(c.name not in block for c in x.outputs):
            continue
        leaving = [
            o
            for b in block
            for o in by_name[b].outputs
            if o.name and (o.name in graph_outputs or any(c.name not in block for c in o.outputs))
        ]
        if len(leaving) != 1 or leaving[0] not in node.outputs:
            continue
        f = leaving[0]
        ordered = tuple(sorted(block, key=order.__getitem__))
        candidates.append(Candidate(f.name, tuple(f.shape), ordered))
    return candidates
