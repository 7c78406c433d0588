"""ResNet-18 (He et al., 2016) in the torchvision layout: conv7x7/2 + BN + relu, max-pool,
four stages of two BasicBlocks, global average pool and one Gemm. BN stays unfolded.
"""

from __future__ import annotations

from .layers import GraphBuilder

DEFAULT_SIZE = 224
MIN_SIZE = 1
SIZE_STEP = 1
NUM_CLASSES = 1000
DOC = (
    "ResNet-18: conv7x7/2-64 + BN + relu, maxpool 3/2 pad 1, stages of 2 BasicBlocks "
    "(64, 128/2, 256/2, 512/2; conv3x3-BN-relu-conv3x3-BN + identity or conv1x1/2-BN "
    "downsample, Add, relu), GlobalAveragePool, Flatten, Gemm 1000. Seeded He-normal weights."
)

# (channels, stride of the first block) per stage.
STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (512, 2))
BLOCKS_PER_STAGE = 2
# Mean BN scale at the end of each residual branch, so the variance grows slowly over the Adds.
BRANCH_GAMMA = 0.5


def basic_block(b: GraphBuilder, x: str, name: str, channels: int, stride: int) -> str:
    """Append one BasicBlock: two conv3x3+BN, a shortcut (identity, or conv1x1+BN when the
    shape changes), Add and relu.

    Args:
        b: the builder.
        x: the input tensor.
        name: the block prefix, e.g. "layer2.0".
        channels: output channels (already width-scaled).
        stride: stride of the first conv and of the downsample.

    Returns:
        The name of the block's output tensor.
    """
    y = b.conv_act(x, f"{name}/conv1", channels, 3, stride=stride, batch_norm=True)
    y = b.conv_act(y, f"{name}/conv2", channels, 3, act=None, batch_norm=True, gamma=BRANCH_GAMMA)
    shortcut = x
    if stride != 1 or b.channels(x) != channels:
        shortcut = b.conv_act(
            x, f"{name}/downsample", channels, 1, stride=stride, pad=0, act=None, batch_norm=True
        )
    return b.relu(b.add(y, shortcut, f"{name}/add"), f"{name}/relu")


def graph(b: GraphBuilder) -> str:
    """Append ResNet-18 to `b`, starting at its input.

    Args:
        b: the builder, fresh.

    Returns:
        The name of the logits tensor [batch, 1000].
    """
    x = b.conv_act(b.input, "conv1", b.ch(64), 7, stride=2, pad=3, batch_norm=True)
    x = b.max_pool(x, "maxpool", 3, 2, pad=1)
    for stage, (channels, stride) in enumerate(STAGES, start=1):
        for block in range(BLOCKS_PER_STAGE):
            x = basic_block(
                b, x, f"layer{stage}.{block}", b.ch(channels), stride if block == 0 else 1
            )
    x = b.global_avg_pool(x, "avgpool")
    x = b.flatten(x, "flatten")
    return b.gemm(x, "fc", NUM_CLASSES)
