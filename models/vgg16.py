"""VGG16 (configuration D): thirteen 3x3 convs in five blocks, each closed by a 2x2 max-pool,
then three Gemms (at 224² the classifier sees 512 x 7 x 7 features).
"""

from __future__ import annotations

from .layers import GraphBuilder

DEFAULT_SIZE = 224
MIN_SIZE = 32
SIZE_STEP = 1
NUM_CLASSES = 1000
DOC = (
    "VGG16 (config D, no BN, no dropout): conv3x3 blocks 64x2, 128x2, 256x3, 512x3, 512x3, "
    "each followed by maxpool 2/2, then Flatten, Gemm 4096, 4096, 1000. Seeded He-normal weights."
)

# (channels, convs) per block.
BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def graph(b: GraphBuilder) -> str:
    """Append VGG16 to `b`, starting at its input.

    Args:
        b: the builder, fresh.

    Returns:
        The name of the logits tensor [batch, 1000].
    """
    x = b.input
    for i, (channels, convs) in enumerate(BLOCKS, start=1):
        for j in range(1, convs + 1):
            x = b.conv_act(x, f"conv{i}_{j}", b.ch(channels), 3)
        x = b.max_pool(x, f"pool{i}", 2, 2)
    x = b.flatten(x, "flatten")
    x = b.relu(b.gemm(x, "fc6", b.ch(4096)), "fc6/relu")
    x = b.relu(b.gemm(x, "fc7", b.ch(4096)), "fc7/relu")
    return b.gemm(x, "fc8", NUM_CLASSES)
