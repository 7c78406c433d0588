"""`flcompile profile`: measured per-node costs, fitted into a cost law per op type.

- `trace`: run a model under onnxruntime's profiler and read each node's kernel time;
- `law`: fit seconds = a + b·FLOPs per op type by least squares, and predict with it;
- `variants`: the models measured, the original and its tiled rewrites at a few grids;
- `profile_json`: the versioned profile file;
- `cli`: the command.
"""
