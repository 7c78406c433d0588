"""MobileNetV2 (Sandler et al., 2018): conv3x3/2, seventeen inverted-residual blocks
(expand 1x1, depthwise 3x3, linear project 1x1, Add when shapes match), conv1x1-1280,
global average pool and one Gemm. ReLU6 is Clip(0, 6); BN stays unfolded.
"""

from __future__ import annotations

from .layers import GraphBuilder

DEFAULT_SIZE = 224
MIN_SIZE = 1
SIZE_STEP = 1
NUM_CLASSES = 1000
LAST_CHANNELS = 1280
DOC = (
    "MobileNetV2: conv3x3/2-32 + BN + ReLU6, 17 inverted residual blocks (t, c, n, s) = "
    "(1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1), "
    "conv1x1-1280, GlobalAveragePool, Flatten, Gemm 1000. ReLU6 = Clip(0, 6). "
    "Seeded He-normal weights."
)

# (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2.
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FIRST_CHANNELS = 32
# Mean BN scale of a project conv whose output is added to the block input.
BRANCH_GAMMA = 0.5


def inverted_residual(
    b: GraphBuilder,
    x: str,
    name: str,
    *,
    hidden: int,
    out: int,
    stride: int,
    expand: bool,
    residual: bool,
) -> str:
    """Append one inverted-residual block: [expand 1x1] -> depthwise 3x3 -> project 1x1 [+ x].

    The model decides `expand` and `residual` from the full-width settings, so the topology
    does not depend on the width multiplier.

    Args:
        b: the builder.
        x: the input tensor.
        name: the block prefix, e.g. "block3".
        hidden: expanded channels (already width-scaled).
        out: output channels (already width-scaled).
        stride: stride of the depthwise conv.
        expand: whether there is an expand conv (t > 1); without one, `hidden` must equal
            the input channels.
        residual: whether to add the input back (stride 1 and equal channels at full width).

    Returns:
        The name of the block's output tensor.
    """
    y = x
    if expand:
        y = b.conv_act(y, f"{name}/expand", hidden, 1, act="relu6", batch_norm=True)
    y = b.conv_act(
        y, f"{name}/dwise", hidden, 3, stride=stride, groups=hidden, act="relu6", batch_norm=True
    )
    gamma = BRANCH_GAMMA if residual else 1.0
    y = b.conv_act(y, f"{name}/project", out, 1, act=None, batch_norm=True, gamma=gamma)
    return b.add(y, x, f"{name}/add") if residual else y


def graph(b: GraphBuilder) -> str:
    """Append MobileNetV2 to `b`, starting at its input.

    Args:
        b: the builder, fresh.

    Returns:
        The name of the logits tensor [batch, 1000].
    """
    x = b.conv_act(
        b.input, "conv1", b.ch(FIRST_CHANNELS), 3, stride=2, act="relu6", batch_norm=True
    )
    full_in = FIRST_CHANNELS
    index = 1
    for t, c, n, s in SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            residual = stride == 1 and full_in == c
            hidden = b.channels(x) if t == 1 else b.ch(full_in * t)
            x = inverted_residual(
                b,
                x,
                f"block{index}",
                hidden=hidden,
                out=b.ch(c),
                stride=stride,
                expand=t != 1,
                residual=residual,
            )
            full_in = c
            index += 1
    x = b.conv_act(x, "conv_last", b.ch(LAST_CHANNELS), 1, act="relu6", batch_norm=True)
    x = b.global_avg_pool(x, "avgpool")
    x = b.flatten(x, "flatten")
    return b.gemm(x, "fc", NUM_CLASSES)
