"""SqueezeNet v1.0 (Iandola et al., 2016): conv1 7x7/2, eight Fire modules and three
ceil-mode max-pools, then conv10 1x1 to the classes and a global average pool.
"""

from __future__ import annotations

from .layers import GraphBuilder

DEFAULT_SIZE = 224
MIN_SIZE = 29
SIZE_STEP = 1
NUM_CLASSES = 1000
DOC = (
    "SqueezeNet v1.0: conv1 7x7/2-96, maxpool 3/2 (ceil), fire2-4, maxpool, fire5-8, maxpool, "
    "fire9, conv10 1x1-1000, relu, GlobalAveragePool, Flatten. Fire = squeeze1x1 -> "
    "[expand1x1, expand3x3] -> Concat. Seeded He-normal weights."
)

# Fire modules by index: (squeeze, expand1x1, expand3x3); a max-pool precedes fire 5 and 9.
FIRES: dict[int, tuple[int, int, int]] = {
    2: (16, 64, 64),
    3: (16, 64, 64),
    4: (32, 128, 128),
    5: (32, 128, 128),
    6: (48, 192, 192),
    7: (48, 192, 192),
    8: (64, 256, 256),
    9: (64, 256, 256),
}
POOL_BEFORE = {5: "pool4", 9: "pool8"}


def fire(b: GraphBuilder, x: str, name: str, squeeze: int, e1: int, e3: int) -> str:
    """Append one Fire module: squeeze1x1 + relu, then expand1x1 and expand3x3 (+ relu),
    concatenated on channels.

    Args:
        b: the builder.
        x: the input tensor.
        name: the module prefix, e.g. "fire2".
        squeeze, e1, e3: full-width channel counts (the builder's width scales them).

    Returns:
        The name of the Concat output.
    """
    s = b.conv_act(x, f"{name}/squeeze1x1", b.ch(squeeze), 1)
    left = b.conv_act(s, f"{name}/expand1x1", b.ch(e1), 1)
    right = b.conv_act(s, f"{name}/expand3x3", b.ch(e3), 3, pad=1)
    return b.concat([left, right], f"{name}/concat")


def graph(b: GraphBuilder) -> str:
    """Append SqueezeNet v1.0 to `b`, starting at its input.

    Args:
        b: the builder, fresh.

    Returns:
        The name of the class-score tensor [batch, 1000].
    """
    x = b.conv_act(b.input, "conv1", b.ch(96), 7, stride=2, pad=0)
    x = b.max_pool(x, "pool1", 3, 2, ceil=True)
    for index, (squeeze, e1, e3) in FIRES.items():
        if index in POOL_BEFORE:
            x = b.max_pool(x, POOL_BEFORE[index], 3, 2, ceil=True)
        x = fire(b, x, f"fire{index}", squeeze, e1, e3)
    x = b.conv_act(x, "conv10", NUM_CLASSES, 1)
    x = b.global_avg_pool(x, "pool10")
    return b.flatten(x, "flatten")
