"""YOLOv2 (Redmon & Farhadi, 2017) on Darknet-19 at 416²: conv+BN+leaky blocks with five
max-pools, a 26x26 passthrough reorganised by SpaceToDepth and routed into the 13x13 head.
"""

from __future__ import annotations

from .layers import GraphBuilder

DEFAULT_SIZE = 416
MIN_SIZE = 32
SIZE_STEP = 32
# 5 anchors x (4 box + 1 objectness + 20 VOC classes).
HEAD_CHANNELS = 125
DOC = (
    "YOLOv2 (VOC, Darknet-19 backbone): conv3x3/1x1 + BatchNormalization + LeakyRelu(0.1) with "
    "maxpool 2/2; passthrough conv1x1-64 on the 26x26 map, SpaceToDepth(2) reorg, route Concat "
    "with the 13x13x1024 map, conv3x3-1024, conv1x1-125 -> [B, 125, S/32, S/32]. "
    "Seeded He-normal weights."
)

# A layer is a channel count (3x3 conv), (channels, 1) for a 1x1 conv, or "M" for a 2x2/2
# max-pool. Each conv is followed by BatchNormalization and LeakyRelu(0.1).
Layer = int | tuple[int, int] | str

# Darknet-19 up to the passthrough source (conv13, 26x26 at 416²).
BACKBONE: tuple[Layer, ...] = (
    32, "M", 64, "M", 128, (64, 1), 128, "M", 256, (128, 1), 256, "M",
    512, (256, 1), 512, (256, 1), 512,
)  # fmt: skip
# From the passthrough source to the 13x13 map that the route joins (conv20).
BACKBONE_TAIL: tuple[Layer, ...] = (
    "M", 1024, (512, 1), 1024, (512, 1), 1024, 1024, 1024,
)  # fmt: skip


def _stack(
    b: GraphBuilder, x: str, layers: tuple[Layer, ...], conv_index: int, pool_index: int
) -> tuple[str, int, int]:
    """Append `layers` numbering convs and pools from the given indices; return the output
    tensor and the next free indices."""
    for layer in layers:
        if layer == "M":
            x = b.max_pool(x, f"pool{pool_index}", 2, 2)
            pool_index += 1
            continue
        channels, kernel = layer if isinstance(layer, tuple) else (layer, 3)
        x = b.conv_act(x, f"conv{conv_index}", b.ch(channels), kernel, act="leaky", batch_norm=True)
        conv_index += 1
    return x, conv_index, pool_index


def graph(b: GraphBuilder) -> str:
    """Append the YOLOv2 detector to `b`, starting at its input.

    Args:
        b: the builder, fresh; its size must be a multiple of 32.

    Returns:
        The name of the detection tensor [batch, 125, size/32, size/32].
    """
    source, conv_index, pool_index = _stack(b, b.input, BACKBONE, 1, 1)
    x, conv_index, _ = _stack(b, source, BACKBONE_TAIL, conv_index, pool_index)
    passthrough = b.conv_act(source, "passthrough", b.ch(64), 1, act="leaky", batch_norm=True)
    reorg = b.space_to_depth(passthrough, "reorg", 2)
    x = b.concat([reorg, x], "route")
    x = b.conv_act(x, f"conv{conv_index}", b.ch(1024), 3, act="leaky", batch_norm=True)
    return b.conv(x, "detect", HEAD_CHANNELS, 1, bias=True)
