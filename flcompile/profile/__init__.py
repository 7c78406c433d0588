"""`flcompile profile`: measured per-node costs, fitted into a cost law per op type.

- `trace`: run a model under onnxruntime's profiler and read each node's kernel time;
- `law`: fit seconds = a + b·FLOPs per op type by least squares, and predict with it;
- `variants`: the models measured, the original and its tiled rewrites at a few grids;
- `profile_json`: the versioned profile file;
- `cli`: the command;
- `link_probe`, `link_fit`, `link_json`, `link_cli`: `--server`, the link's latency + bytes /
  rate timed against a running edge server, fitted, and written as a link profile.
"""
