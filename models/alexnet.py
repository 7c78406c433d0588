"""AlexNet in the torchvision layout: five convs with three max-pools, then three Gemms.

At 224² the last pool ("pool5") is 256 x 6 x 6 and the classifier sees 9216 features.
"""

from __future__ import annotations

from .layers import GraphBuilder

DEFAULT_SIZE = 224
MIN_SIZE = 63
SIZE_STEP = 1
NUM_CLASSES = 1000
DOC = (
    "AlexNet (torchvision layout, no dropout): conv11x11/4-64, pool, conv5x5-192, pool, "
    "conv3x3-384, -256, -256, pool5, Flatten, Gemm 4096, 4096, 1000. Seeded He-normal weights."
)


def graph(b: GraphBuilder) -> str:
    """Append AlexNet to `b`, starting at its input.

    Args:
        b: the builder, fresh.

    Returns:
        The name of the logits tensor [batch, 1000].
    """
    x = b.conv_act(b.input, "conv1", b.ch(64), 11, stride=4, pad=2)
    x = b.max_pool(x, "pool1", 3, 2)
    x = b.conv_act(x, "conv2", b.ch(192), 5, pad=2)
    x = b.max_pool(x, "pool2", 3, 2)
    x = b.conv_act(x, "conv3", b.ch(384), 3)
    x = b.conv_act(x, "conv4", b.ch(256), 3)
    x = b.conv_act(x, "conv5", b.ch(256), 3)
    x = b.max_pool(x, "pool5", 3, 2)
    x = b.flatten(x, "flatten")
    x = b.relu(b.gemm(x, "fc6", b.ch(4096)), "fc6/relu")
    x = b.relu(b.gemm(x, "fc7", b.ch(4096)), "fc7/relu")
    return b.gemm(x, "fc8", NUM_CLASSES)
