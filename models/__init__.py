"""The model zoo: CNNs built in plain ONNX with seeded weights.

`build(name, width=..., size=..., batch=..., seed=...)` returns an `onnx.ModelProto` for one
of `NAMES`; `python -m flcompile.models NAME -o PATH` writes one to disk.
"""

from __future__ import annotations

from .zoo import NAMES, build, default_size, min_size

__all__ = ["NAMES", "build", "default_size", "min_size"]
