"""flcompile: fused-layer tiling and device/edge split of ONNX CNNs."""

from __future__ import annotations

__version__ = "0.1.0"
