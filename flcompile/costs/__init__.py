"""The cost layer: what a node, a message and a plan's paths cost, from FLOPs to seconds.

Read it from the bottom up:

- `flops`: what a node computes, in FLOPs and bytes (one counting rule for everything);
- `node_cost`: what a node costs in seconds on the device and the edge (`ComputeModel`,
  the analytic model), and the edge model in words;
- `node_key`: a node's kind for a measured law ("Conv 3x3") and its activation bytes;
- `profiled`: the same from a measured profile (`ProfiledComputeModel`), by the law of each
  node's kind, or its measured time where the profile timed its size (`measured_sizes`);
- `link`: what a message costs (`LinkModel`, `Shannon`);
- `wire`: what a sent tensor weighs on the link under `--send-dtype` (float16 halves float32);
- `untiled`: the untiled model's per-node FLOPs, its single cuts and the baselines
  (local-only, full offload, NFL);
- `tiles`: a tiled block's FLOPs and bytes per path and cut, before any speed or rate;
- `fuse`: the nodes that join the tiles of F, as `NodeWork`;
- `table`: those in seconds, the solvers' `CostTable`.

The layer reads the graph passes (`flcompile.passes`), never the other way round. The
models most callers need are re-exported here.
"""

from __future__ import annotations

from flcompile.costs.link import BYTES_PER_MB, LinkModel, Shannon
from flcompile.costs.node_cost import (
    PAPER_DEVICE_FLOPS,
    PAPER_EDGE_FLOPS,
    ComputeModel,
    compute_model,
    edge_model_words,
)

__all__ = [
    "BYTES_PER_MB",
    "PAPER_DEVICE_FLOPS",
    "PAPER_EDGE_FLOPS",
    "ComputeModel",
    "LinkModel",
    "Shannon",
    "compute_model",
    "edge_model_words",
]
