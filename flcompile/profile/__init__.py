"""`flcompile profile`: measured per-node costs, fitted into a cost law per node kind.

- `trace`: run a model under onnxruntime's profiler and read each node's kernel time;
- `law`: fit seconds = a + b·FLOPs + c·bytes per node kind ("Conv 3x3") and op type, keep
  the measured sizes, and predict with them;
- `variants`: the models measured, the original and the stage models of its tiled rewrites;
- `accuracy`: each tiled grid's stage models predicted by the laws fitted on the others;
- `profile_json`: the versioned profile file;
- `cli`: the command;
- `link_probe`, `link_fit`, `link_json`, `link_cli`: `--server`, the link's latency + bytes /
  rate timed against a running edge server, fitted, and written as a link profile.
"""
