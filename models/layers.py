"""The one ONNX model builder: nodes, seeded weights and the final model, and the zoo's layers.

`OnnxBuilder` owns what every model built in code needs: appending nodes and initializers,
seeded random weights, renaming the tensor a network ends in, and assembling the
`onnx.ModelProto` with the lowest IR version that carries its opset. The zoo's `GraphBuilder`
adds named layers with per-tensor shape bookkeeping on top; every model file describes its
network as calls on one, so no model file repeats any of that logic. The tests build their
small graphs through `OnnxBuilder` too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import flcompile
from flcompile.errors import InternalError, UsageError
from flcompile.model_io import PROTOBUF_LIMIT

INPUT_NAME = "input"
OUTPUT_NAME = "output"
PRODUCER_NAME = "flcompile.models"

# Protobuf cannot serialise a single message of 2 GiB or more.

_ACTIVATIONS = ("relu", "leaky", "relu6", None)


def scale_channels(channels: int, width: float) -> int:
    """Scale a channel count by the width multiplier.

    Args:
        channels: the channel count of the full-width network.
        width: the width multiplier (> 0).

    Returns:
        `channels * width` rounded half up, and at least 1.
    """
    return max(1, math.floor(channels * width + 0.5))


ValueSpec = tuple[str, Sequence[int]]


class OnnxBuilder:
    """Appends ONNX nodes and initializers, draws seeded weights and assembles the model.

    Attributes:
        name: the graph name.
        opset: the default-domain opset.
        rng: the random generator every weight is drawn from.
        nodes: the nodes appended so far, in order.
        initializers: the initializers added so far, in order.
    """

    def __init__(self, name: str, *, opset: int, seed: int = 0) -> None:
        self.name = name
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def add_node(
        self, op: str, inputs: Sequence[str], outputs: Sequence[str], name: str, **attrs: object
    ) -> list[str]:
        """Append one node of the default domain.

        Args:
            op: the op type.
            inputs: its input tensor names.
            outputs: its output tensor names.
            name: the node name.
            **attrs: its attributes.

        Returns:
            The output tensor names.
        """
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))
        return list(outputs)

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        """Add `array` as initializer `name`; returns the name."""
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def normal(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        """Seeded float32 normal weights of standard deviation `std` (He: sqrt(2 / fan_in))."""
        array = self.rng.standard_normal(shape, dtype=np.float32)
        array *= np.float32(std)
        return array

    def rename(self, old: str, new: str) -> None:
        """Rename tensor `old` to `new` in every node (e.g. to the graph output's name)."""
        for node in self.nodes:
            node.input[:] = [new if i == old else i for i in node.input]
            node.output[:] = [new if o == old else o for o in node.output]

    def model(
        self,
        inputs: Sequence[ValueSpec],
        outputs: Sequence[ValueSpec],
        *,
        producer: str = PRODUCER_NAME,
        doc: str = "",
        metadata: dict[str, str] | None = None,
    ) -> onnx.ModelProto:
        """The model of the nodes and initializers so far (float32 inputs and outputs).

        Args:
            inputs: the graph inputs, as (name, shape).
            outputs: the graph outputs, as (name, shape).
            producer: the model's producer_name.
            doc: the model's doc_string.
            metadata: extra metadata_props (e.g. the build arguments).

        Returns:
            The model, with ir_version the lowest that carries `opset`.
        """

        def infos(specs: Sequence[ValueSpec]) -> list[onnx.ValueInfoProto]:
            return [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in specs]

        graph = helper.make_graph(self.nodes, self.name, infos(inputs), infos(outputs))
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(
            graph,
            opset_imports=opsets,
            producer_name=producer,
            producer_version=flcompile.__version__,
            doc_string=doc,
        )
        # Added after make_model, one CopyFrom each: make_graph's `extend` re-serializes every
        # tensor and make_model copies the graph again, which for hundreds of MB of weights
        # costs seconds.
        for tensor in self.initializers:
            model.graph.initializer.add().CopyFrom(tensor)
        model.ir_version = helper.find_min_ir_version_for(opsets)
        helper.set_model_props(model, metadata or {})
        return model


class GraphBuilder(OnnxBuilder):
    """Builds one NCHW float32 CNN as ONNX nodes plus seeded initializers.

    Each layer method takes the name of an existing tensor, appends the node(s) and returns
    the name of the new output tensor. A node's output tensor has the node's own name, so
    `conv1` produces tensor `conv1` and its weights are `conv1.weight` / `conv1.bias`.
    The builder knows every tensor's per-sample shape (`shape(name)`), which the model files
    use for sizes that depend on the input resolution (e.g. a Gemm after Flatten).

    Layer methods raise `InternalError` when a model file misuses them (a duplicate name, an
    empty output, mismatched shapes) and `UsageError` when the weights would pass 2 GiB.

    Attributes:
        name: the graph name.
        width: the channel width multiplier.
        size: the input height and width.
        batch: the batch size.
        opset: the default-domain opset.
    """

    def __init__(
        self, name: str, *, width: float, size: int, batch: int, seed: int, opset: int
    ) -> None:
        super().__init__(name, opset=opset, seed=seed)
        self.width = width
        self.size = size
        self.batch = batch
        self._shapes: dict[str, tuple[int, ...]] = {INPUT_NAME: (3, size, size)}
        self._node_names: set[str] = set()
        self._nbytes = 0

    # ------------------------------------------------------------------ bookkeeping

    @property
    def input(self) -> str:
        """The name of the graph input tensor."""
        return INPUT_NAME

    def ch(self, channels: int) -> int:
        """The channel count `channels` scaled by this builder's width multiplier."""
        return scale_channels(channels, self.width)

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The per-sample shape (without batch) of a tensor built so far."""
        try:
            return self._shapes[tensor]
        except KeyError as e:
            raise InternalError(f"zoo builder: tensor '{tensor}' does not exist") from e

    def channels(self, tensor: str) -> int:
        """The channel count (axis 1) of a tensor built so far."""
        return self.shape(tensor)[0]

    def _node(
        self,
        op: str,
        name: str,
        inputs: Sequence[str],
        shape: tuple[int, ...],
        **attrs: object,
    ) -> str:
        if name in self._node_names or name in self._shapes:
            raise InternalError(f"zoo builder: name '{name}' is used twice in {self.name}")
        if any(d < 1 for d in shape):
            raise InternalError(
                f"zoo builder: {self.name} node '{name}' ({op}) would output shape {shape} "
                f"at input size {self.size}",
                hint="the model's MIN_SIZE is too small; raise it",
            )
        self._node_names.add(name)
        self.add_node(op, inputs, [name], name, **attrs)
        self._shapes[name] = shape
        return name

    def _normal(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        # Fail before drawing the weights that would not fit, not after.
        self._nbytes += 4 * math.prod(shape)
        if self._nbytes > PROTOBUF_LIMIT:
            raise UsageError(
                f"zoo model '{self.name}' would have over 2 GiB of weights at size {self.size} "
                f"and width {self.width}",
                hint="protobuf caps a model at 2 GiB; use a smaller --size or --width",
            )
        return self.normal(shape, std)

    def _spatial(self, tensor: str) -> tuple[int, int, int]:
        shape = self.shape(tensor)
        if len(shape) != 3:
            raise InternalError(f"zoo builder: '{tensor}' is not a CHW tensor: {shape}")
        return shape  # type: ignore[return-value]

    # ------------------------------------------------------------------ layers

    def conv(
        self,
        x: str,
        name: str,
        cout: int,
        kernel: int,
        *,
        stride: int = 1,
        pad: int | None = None,
        groups: int = 1,
        bias: bool = True,
    ) -> str:
        """Append a square Conv with He-normal weights (std = sqrt(2 / fan_in)).

        Args:
            x: the input tensor.
            name: the node name (also the output tensor name).
            cout: output channels (already width-scaled).
            kernel: kernel height and width.
            stride: stride on both axes.
            pad: symmetric padding; defaults to `kernel // 2`.
            groups: the group count; `groups == cin == cout` makes a depthwise conv.
            bias: whether to add a small random bias input.

        Returns:
            The output tensor name.
        """
        cin, h, w = self._spatial(x)
        pad = kernel // 2 if pad is None else pad
        if cin % groups or cout % groups:
            raise InternalError(f"zoo builder: {name}: groups={groups} must divide {cin}, {cout}")
        fan_in = cin // groups * kernel * kernel
        inputs = [
            x,
            self.add_initializer(
                f"{name}.weight",
                self._normal((cout, cin // groups, kernel, kernel), math.sqrt(2.0 / fan_in)),
            ),
        ]
        if bias:
            inputs.append(self.add_initializer(f"{name}.bias", self._normal((cout,), 0.05)))
        oh = (h + 2 * pad - kernel) // stride + 1
        ow = (w + 2 * pad - kernel) // stride + 1
        return self._node(
            "Conv",
            name,
            inputs,
            (cout, oh, ow),
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=groups,
        )

    def batch_norm(self, x: str, name: str, *, gamma: float = 1.0) -> str:
        """Append an inference-mode BatchNormalization with mildly random, O(1) parameters.

        Args:
            x: the input tensor.
            name: the node name.
            gamma: the mean of the random scale; residual branches use less than 1 so that
                the variance does not double at every Add.

        Returns:
            The output tensor name.
        """
        c = self.channels(x)
        scale = gamma * (1.0 + self._normal((c,), 0.1))
        beta = self._normal((c,), 0.1)
        mean = self._normal((c,), 0.1)
        # E[1 / var] = ln(1.25 / 0.8) / 0.45 ~ 1, so on average BN keeps the variance.
        var = self.rng.uniform(0.8, 1.25, size=(c,)).astype(np.float32)
        inputs = [
            x,
            self.add_initializer(f"{name}.scale", scale),
            self.add_initializer(f"{name}.bias", beta),
            self.add_initializer(f"{name}.mean", mean),
            self.add_initializer(f"{name}.var", var),
        ]
        return self._node("BatchNormalization", name, inputs, self.shape(x), epsilon=1e-5)

    def relu(self, x: str, name: str) -> str:
        """Append a Relu."""
        return self._node("Relu", name, [x], self.shape(x))

    def leaky_relu(self, x: str, name: str, alpha: float = 0.1) -> str:
        """Append a LeakyRelu (Darknet uses alpha = 0.1)."""
        return self._node("LeakyRelu", name, [x], self.shape(x), alpha=alpha)

    def relu6(self, x: str, name: str) -> str:
        """Append ReLU6 as Clip(x, 0, 6), with min and max as shared scalar initializers."""
        if "relu6.min" not in self._shapes:
            self.add_initializer("relu6.min", np.array(0.0, dtype=np.float32))
            self.add_initializer("relu6.max", np.array(6.0, dtype=np.float32))
            self._shapes["relu6.min"] = self._shapes["relu6.max"] = ()
        return self._node("Clip", name, [x, "relu6.min", "relu6.max"], self.shape(x))

    def activation(self, x: str, name: str, kind: str | None) -> str:
        """Append the activation `kind` ("relu", "leaky", "relu6") or nothing for None."""
        if kind == "relu":
            return self.relu(x, name)
        if kind == "leaky":
            return self.leaky_relu(x, name)
        if kind == "relu6":
            return self.relu6(x, name)
        if kind is None:
            return x
        raise InternalError(f"zoo builder: unknown activation '{kind}', not in {_ACTIVATIONS}")

    def conv_act(
        self,
        x: str,
        name: str,
        cout: int,
        kernel: int,
        *,
        act: str | None = "relu",
        batch_norm: bool = False,
        gamma: float = 1.0,
        stride: int = 1,
        pad: int | None = None,
        groups: int = 1,
    ) -> str:
        """Append Conv [-> BatchNormalization] [-> activation] as nodes `name`, `name/bn`,
        `name/<act>`. A conv followed by BN has no bias, as in torchvision and Darknet;
        `gamma` is passed on to `batch_norm`.

        Returns:
            The output tensor name of the last node appended.
        """
        y = self.conv(
            x, name, cout, kernel, stride=stride, pad=pad, groups=groups, bias=not batch_norm
        )
        if batch_norm:
            y = self.batch_norm(y, f"{name}/bn", gamma=gamma)
        return self.activation(y, f"{name}/{act}", act) if act else y

    def max_pool(
        self, x: str, name: str, kernel: int, stride: int, *, pad: int = 0, ceil: bool = False
    ) -> str:
        """Append a square MaxPool (`ceil=True` sets ceil_mode=1)."""
        c, h, w = self._spatial(x)
        if min(h, w) + 2 * pad < kernel:
            # ceil_mode would still give one output, from a window hanging off the input.
            raise InternalError(
                f"zoo builder: {self.name} node '{name}' (MaxPool {kernel}x{kernel}) sees a "
                f"{h}x{w} input at input size {self.size}",
                hint="the model's MIN_SIZE is too small; raise it",
            )

        def out(n: int) -> int:
            span = n + 2 * pad - kernel
            o = (-(-span // stride) if ceil else span // stride) + 1
            # ONNX/torch rule: the last window must start inside the input or its left pad.
            if ceil and (o - 1) * stride >= n + pad:
                o -= 1
            return o

        attrs: dict[str, object] = {
            "kernel_shape": [kernel, kernel],
            "strides": [stride, stride],
            "pads": [pad, pad, pad, pad],
        }
        if ceil:
            attrs["ceil_mode"] = 1
        return self._node("MaxPool", name, [x], (c, out(h), out(w)), **attrs)

    def global_avg_pool(self, x: str, name: str) -> str:
        """Append a GlobalAveragePool (output C x 1 x 1)."""
        c, _, _ = self._spatial(x)
        return self._node("GlobalAveragePool", name, [x], (c, 1, 1))

    def flatten(self, x: str, name: str) -> str:
        """Append Flatten(axis=1)."""
        return self._node("Flatten", name, [x], (math.prod(self.shape(x)),), axis=1)

    def gemm(self, x: str, name: str, nout: int) -> str:
        """Append a fully connected Gemm (weight [nout, nin], transB=1, He-normal, bias)."""
        (nin,) = self.shape(x)
        weight = self.add_initializer(
            f"{name}.weight", self._normal((nout, nin), math.sqrt(2.0 / nin))
        )
        bias = self.add_initializer(f"{name}.bias", self._normal((nout,), 0.05))
        return self._node("Gemm", name, [x, weight, bias], (nout,), transB=1)

    def concat(self, xs: Sequence[str], name: str) -> str:
        """Append a channel Concat (axis=1) of CHW tensors with equal H and W."""
        shapes = [self._spatial(x) for x in xs]
        if len({s[1:] for s in shapes}) != 1:
            raise InternalError(f"zoo builder: {name}: concat inputs differ in H, W: {shapes}")
        c = sum(s[0] for s in shapes)
        return self._node("Concat", name, xs, (c, *shapes[0][1:]), axis=1)

    def add(self, a: str, b: str, name: str) -> str:
        """Append an elementwise Add of two tensors of the same shape."""
        if self.shape(a) != self.shape(b):
            raise InternalError(f"zoo builder: {name}: Add of {self.shape(a)} and {self.shape(b)}")
        return self._node("Add", name, [a, b], self.shape(a))

    def space_to_depth(self, x: str, name: str, block: int) -> str:
        """Append SpaceToDepth (YOLOv2's reorg): C x H x W -> C*b*b x H/b x W/b."""
        c, h, w = self._spatial(x)
        if h % block or w % block:
            raise InternalError(f"zoo builder: {name}: {h}x{w} is not divisible by {block}")
        return self._node(
            "SpaceToDepth", name, [x], (c * block * block, h // block, w // block), blocksize=block
        )

    # ------------------------------------------------------------------ result

    def finish(self, output: str, *, doc: str, metadata: dict[str, str]) -> onnx.ModelProto:
        """Rename `output` to the graph output "output" and assemble the model.

        Args:
            output: the tensor the network ends in.
            doc: the model's doc_string.
            metadata: extra metadata_props (e.g. the build arguments).

        Returns:
            The finished model, with ir_version the lowest that carries `opset`.
        """
        self.rename(output, OUTPUT_NAME)
        size = [self.batch, 3, self.size, self.size]
        return self.model(
            [(INPUT_NAME, size)],
            [(OUTPUT_NAME, [self.batch, *self.shape(output)])],
            doc=doc,
            metadata=metadata,
        )
