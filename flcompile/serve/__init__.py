"""`flcompile serve`: the edge side of compiled plans, on Triton Inference Server (PyTriton)."""
