"""Small ONNX models built from layer specs, and the fused-layer pipeline, for the pass tests.

A spec is a plain dict made by one of the helpers below (`conv`, `maxpool`, `act`,
`residual`, ...), so a failing hypothesis example prints as readable code. `build` turns a
list of specs into a checked `onnx.ModelProto` with seeded He-scaled weights; `compile_fl`
runs normalize → prefix → candidates → tiling, then the pipeline's own tile → split
(`tile_and_split`, as `emit_fused` does).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import onnxruntime as ort
from onnx import TensorProto, numpy_helper

from flcompile.costs.intermediate import computed_pieces
from flcompile.costs.reuse import MAX_REUSE_PATHS
from flcompile.costs.tiles import block_costs, tiling_geometry
from flcompile.intermediate_pieces import intermediate_split
from flcompile.load import infer_shapes
from flcompile.models.layers import OnnxBuilder
from flcompile.passes.fusable import Candidate, FusablePrefix, find_candidates, find_prefix
from flcompile.passes.normalize import normalize
from flcompile.passes.placement import tile_and_split
from flcompile.passes.receptive_field import Block, Tiling, make_block, make_tiling, tiling_at
from flcompile.passes.tile import TiledGraph
from flcompile.reuse_pieces import reuse_tile_and_split

INPUT = "x"
OUTPUT = "y"

# --------------------------------------------------------------------------- layer specs


def conv(
    out: int,
    k: int | tuple[int, int] = 3,
    s: int | tuple[int, int] = 1,
    d: int | tuple[int, int] = 1,
    pads: tuple[int, int, int, int] | None = None,
    auto_pad: str | None = None,
    group: int | str = 1,
    bias: bool = True,
) -> dict:
    """Conv to `out` channels; pads are ONNX order (top, left, bottom, right); group "dw" is
    depthwise (out must then be a multiple of the input channels)."""
    return dict(
        op="conv", out=out, k=k, s=s, d=d, pads=pads, auto_pad=auto_pad, group=group, bias=bias
    )


def maxpool(
    k: int | tuple[int, int] = 2,
    s: int | tuple[int, int] = 2,
    d: int | tuple[int, int] = 1,
    pads: tuple[int, int, int, int] | None = None,
    ceil: bool = False,
    auto_pad: str | None = None,
) -> dict:
    """MaxPool (dilations need opset ≥ 10)."""
    return dict(op="maxpool", k=k, s=s, d=d, pads=pads, ceil=ceil, auto_pad=auto_pad)


def avgpool(
    k: int | tuple[int, int] = 2,
    s: int | tuple[int, int] = 2,
    pads: tuple[int, int, int, int] | None = None,
    ceil: bool = False,
    cip: int = 0,
    auto_pad: str | None = None,
    d: int | tuple[int, int] = 1,
) -> dict:
    """AveragePool; `cip` is count_include_pad (dilations need opset ≥ 19)."""
    return dict(op="avgpool", k=k, s=s, d=d, pads=pads, ceil=ceil, cip=cip, auto_pad=auto_pad)


def lppool(
    k: int | tuple[int, int] = 2,
    s: int | tuple[int, int] = 2,
    pads: tuple[int, int, int, int] | None = None,
    p: int = 2,
) -> dict:
    """LpPool: the p-norm over each window."""
    return dict(op="lppool", k=k, s=s, d=1, pads=pads, p=p)


def act(op: str) -> dict:
    """A per-pixel op: Relu, LeakyRelu, PRelu ([C,1,1] slope), Clip (min/max inputs), Sigmoid,
    HardSigmoid, HardSwish, Tanh, Elu, BatchNormalization, LRN, Identity or Dropout."""
    return dict(op="act", kind=op)


def const_op(op: str = "Add", shape: str = "channel") -> dict:
    """`op` (Add/Sub/Mul/Div/Max/Min/Pow/Sum) with a constant second operand of shape
    [1,C,1,1] ("channel"), [C,1,1] ("chw") or [] ("scalar")."""
    return dict(op="const", kind=op, shape=shape)


def residual(branch: Sequence[dict], op: str = "Add") -> dict:
    """x + branch(x); the branch must keep the channels and H×W."""
    return dict(op="residual", branch=list(branch), kind=op)


def concat(*branches: Sequence[dict]) -> dict:
    """Channel Concat of the branches, each applied to the same tensor (an empty branch is x)."""
    return dict(op="concat", branches=[list(b) for b in branches])


def split(sizes: Sequence[int], *branches: Sequence[dict], unused: bool = False) -> dict:
    """Channel Split into `sizes`, one branch per part, then a channel Concat of the results;
    with `unused`, the last part is left unread (a Split output that nothing consumes)."""
    return dict(op="split", sizes=list(sizes), branches=[list(b) for b in branches], unused=unused)


def dead(branch: Sequence[dict]) -> dict:
    """A side branch on x whose result nothing reads (normalize removes it); x goes on."""
    return dict(op="dead", branch=list(branch))


def side_output(branch: Sequence[dict]) -> dict:
    """A side branch on x whose result is an extra graph output, so it never reaches F."""
    return dict(op="side_output", branch=list(branch))


def pad(pads: tuple[int, int, int, int], value: float = 0.0, axes: bool = False) -> dict:
    """Constant Pad of H/W by (top, left, bottom, right); `axes` uses the opset-18 axes input."""
    return dict(op="pad", pads=tuple(pads), value=value, axes=axes)


def s2d(block: int = 2) -> dict:
    """SpaceToDepth."""
    return dict(op="s2d", b=block)


def d2s(block: int = 2, mode: str = "DCR") -> dict:
    """DepthToSpace (the channels must be a multiple of block²)."""
    return dict(op="d2s", b=block, mode=mode)


def resize(scales: tuple[int, int] = (2, 2), by_sizes: bool = False, **attrs: str) -> dict:
    """Resize (opset ≥ 11) by integer (H, W) scales, given as scales or (`by_sizes`) as sizes;
    nearest, asymmetric, floor unless `attrs` say otherwise."""
    return dict(op="resize", scales=tuple(scales), by_sizes=by_sizes, attrs=attrs)


def upsample(scales: tuple[int, int] = (2, 2), mode: str = "nearest") -> dict:
    """Upsample (opset 7–9) by integer (H, W) scales."""
    return dict(op="upsample", scales=tuple(scales), mode=mode)


POINTWISE = (
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
    "BatchNormalization", "LRN",
)  # fmt: skip
MIN_OPSET = {"HardSwish": 14, "Celu": 12, "Mish": 18, "Gelu": 20}


# --------------------------------------------------------------------------- shapes


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def window_out(n: int, k: int, s: int, d: int, pb: int, pe: int, ceil: bool = False) -> int:
    """Output size of a window op along one axis with explicit pads (onnxruntime's rule)."""
    span = d * (k - 1) + 1
    num = n + pb + pe - span
    if num < 0:
        return 0
    if not ceil:
        return num // s + 1
    out = -(-num // s) + 1
    if (out - 1) * s >= n + pb:  # the last window must start inside the input or its head pad
        out -= 1
    return out


def ceil_disagrees(n: int, k: int, s: int, d: int, pb: int, pe: int) -> bool:
    """True where onnx shape inference (1.23) keeps a ceil_mode window that would start in the
    end pad, which onnxruntime drops: the two then disagree on the output size."""
    num = n + pb + pe - (d * (k - 1) + 1)
    return num < 0 or (-(-num // s)) * s >= n + pb


def auto_pad_out(n: int, k: int, s: int, d: int, auto_pad: str) -> int:
    """Output size under auto_pad."""
    if auto_pad == "VALID":
        return (n - (d * (k - 1) + 1)) // s + 1
    return -(-n // s)


@dataclass(frozen=True)
class T:
    """A tensor being built: its name, channels and H×W."""

    name: str
    c: int
    h: int
    w: int


class ShapeError(ValueError):
    """The specs do not fit the tensor they are applied to (for hypothesis to reject)."""


class _Builder(OnnxBuilder):
    """The models' `OnnxBuilder`, with nodes named by op and a counter, and the spec layers."""

    def __init__(self, opset: int, seed: int, batch: int, misinferred_ok: bool = False) -> None:
        super().__init__("net", opset=opset, seed=seed)
        self.batch = batch
        self.misinferred_ok = misinferred_ok
        self.misinferred = False  # a pool whose output size onnx infers wrongly was built
        self.extra_outputs: list[T] = []
        self.counter = itertools.count()

    # -- plumbing
    def init(self, hint: str, array: np.ndarray) -> str:
        return self.add_initializer(f"{hint}_{len(self.initializers)}", array)

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        name = f"{op.lower()}{next(self.counter)}"
        outs = [f"{name}_out"] if n_out == 1 else [f"{name}_out{i}" for i in range(n_out)]
        return self.add_node(op, inputs, outs, name, **attrs)

    def he(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return self.normal(shape, math.sqrt(2.0 / max(fan_in, 1)))

    def small(self, shape: tuple[int, ...], lo: float = -0.5, hi: float = 0.5) -> np.ndarray:
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    # -- layers
    def apply_all(self, specs: Sequence[dict], x: T) -> T:
        for spec in specs:
            x = self.apply(spec, x)
        return x

    def apply(self, spec: dict, x: T) -> T:
        return getattr(self, "_" + spec["op"])(spec, x)

    def _window(self, spec: dict, x: T) -> tuple[dict, int, int]:
        (kh, kw), (sh, sw), (dh, dw) = _pair(spec["k"]), _pair(spec["s"]), _pair(spec["d"])
        attrs: dict = {"strides": [sh, sw]}
        if (dh, dw) != (1, 1):
            attrs["dilations"] = [dh, dw]
        if spec.get("auto_pad"):
            auto_pad = attrs["auto_pad"] = spec["auto_pad"]
            h = auto_pad_out(x.h, kh, sh, dh, auto_pad)
            w = auto_pad_out(x.w, kw, sw, dw, auto_pad)
            if auto_pad != "VALID" and (
                (h - 1) * sh + dh * (kh - 1) + 1 < x.h or (w - 1) * sw + dw * (kw - 1) + 1 < x.w
            ):
                raise ShapeError("onnxruntime refuses a SAME auto_pad whose pad is negative")
            if auto_pad != "VALID" and (dh, dw) != (1, 1):
                # onnxruntime's Conv refuses this, and its pools leave the dilation out of the
                # SAME pads, so they disagree with the ONNX spec on the output size.
                raise ShapeError("onnxruntime does not follow the spec for dilated SAME pads")
        else:
            t, left, b, r = spec["pads"] or (0, 0, 0, 0)
            if (t, left, b, r) != (0, 0, 0, 0):
                attrs["pads"] = [t, left, b, r]
            if max(t, b) >= dh * (kh - 1) + 1 or max(left, r) >= dw * (kw - 1) + 1:
                raise ShapeError("a pad as large as the window")
            if spec["op"] != "conv" and (max(t, b) >= kh or max(left, r) >= kw):
                raise ShapeError("onnxruntime's pools refuse a pad as large as the kernel")
            ceil = bool(spec.get("ceil"))
            h = window_out(x.h, kh, sh, dh, t, b, ceil)
            w = window_out(x.w, kw, sw, dw, left, r, ceil)
            if ceil and (
                ceil_disagrees(x.h, kh, sh, dh, t, b) or ceil_disagrees(x.w, kw, sw, dw, left, r)
            ):
                if not self.misinferred_ok or min(h, w) < 1:
                    raise ShapeError("onnx shape inference and onnxruntime disagree on ceil_mode")
                self.misinferred = True
        if h < 1 or w < 1:
            raise ShapeError(f"{spec} leaves no output on {x.h}x{x.w}")
        return attrs, h, w

    def _conv(self, spec: dict, x: T) -> T:
        attrs, h, w = self._window(spec, x)
        group = x.c if spec["group"] == "dw" else int(spec["group"])
        out = int(spec["out"])
        if x.c % group or out % group:
            raise ShapeError(f"group {group} does not divide {x.c} -> {out}")
        kh, kw = _pair(spec["k"])
        if group != 1:
            attrs["group"] = group
        weight = self.init("W", self.he((out, x.c // group, kh, kw), x.c // group * kh * kw))
        inputs = [x.name, weight]
        if spec["bias"]:
            inputs.append(self.init("B", self.small((out,), -0.1, 0.1)))
        (y,) = self.node("Conv", inputs, kernel_shape=[kh, kw], **attrs)
        return T(y, out, h, w)

    def _maxpool(self, spec: dict, x: T) -> T:
        attrs, h, w = self._window(spec, x)
        if spec.get("ceil"):
            attrs["ceil_mode"] = 1
        (y,) = self.node("MaxPool", [x.name], kernel_shape=list(_pair(spec["k"])), **attrs)
        return T(y, x.c, h, w)

    def _avgpool(self, spec: dict, x: T) -> T:
        attrs, h, w = self._window(spec, x)
        if spec.get("ceil"):
            attrs["ceil_mode"] = 1
        if spec.get("cip"):
            attrs["count_include_pad"] = 1
        (y,) = self.node("AveragePool", [x.name], kernel_shape=list(_pair(spec["k"])), **attrs)
        return T(y, x.c, h, w)

    def _lppool(self, spec: dict, x: T) -> T:
        attrs, h, w = self._window(spec, x)
        k = list(_pair(spec["k"]))
        (y,) = self.node("LpPool", [x.name], kernel_shape=k, p=spec["p"], **attrs)
        return T(y, x.c, h, w)

    def _resize(self, spec: dict, x: T) -> T:
        sh, sw = spec["scales"]
        attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}
        attrs = {**attrs, "nearest_mode": "floor", **spec["attrs"]}
        empty = "" if self.opset >= 13 else self.init("empty", np.zeros(0, np.float32))
        scales = self.init("scales", np.array([1, 1, sh, sw], np.float32))
        if spec["by_sizes"]:
            sizes = self.init("sizes", np.array([self.batch, x.c, x.h * sh, x.w * sw], np.int64))
            inputs = [x.name, empty, empty, sizes]
        else:
            inputs = [x.name, empty, scales]
        (y,) = self.node("Resize", inputs, **attrs)
        return T(y, x.c, x.h * sh, x.w * sw)

    def _upsample(self, spec: dict, x: T) -> T:
        sh, sw = spec["scales"]
        scales = np.array([1, 1, sh, sw], np.float32)
        if self.opset >= 9:
            (y,) = self.node("Upsample", [x.name, self.init("scales", scales)], mode=spec["mode"])
        else:
            (y,) = self.node("Upsample", [x.name], mode=spec["mode"], scales=scales.tolist())
        return T(y, x.c, x.h * sh, x.w * sw)

    def _act(self, spec: dict, x: T) -> T:
        kind, c = spec["kind"], x.c
        if self.opset < MIN_OPSET.get(kind, 0):
            raise ShapeError(f"{kind} needs opset {MIN_OPSET[kind]}")
        if kind == "LeakyRelu":
            (y,) = self.node(kind, [x.name], alpha=0.1)
        elif kind == "PRelu":
            (y,) = self.node(kind, [x.name, self.init("slope", self.small((c, 1, 1), 0, 0.3))])
        elif kind == "Clip":
            lo = self.init("clip_min", np.array(-1.0, np.float32))
            hi = self.init("clip_max", np.array(1.5, np.float32))
            (y,) = self.node(kind, [x.name, lo, hi])
        elif kind == "BatchNormalization":
            params = [
                self.small((c,), 0.5, 1.5),
                self.small((c,), -0.2, 0.2),
                self.small((c,), -0.2, 0.2),
                self.small((c,), 0.5, 2.0),
            ]
            names = [self.init(n, p) for n, p in zip(("scale", "B", "mean", "var"), params)]  # noqa: B905
            (y,) = self.node(kind, [x.name, *names], epsilon=1e-5)
        elif kind == "LRN":
            (y,) = self.node(kind, [x.name], size=3, alpha=1e-3, beta=0.75, bias=1.0)
        else:
            (y,) = self.node(kind, [x.name])
        return T(y, c, x.h, x.w)

    def _const(self, spec: dict, x: T) -> T:
        shape = {"channel": (1, x.c, 1, 1), "chw": (x.c, 1, 1), "scalar": ()}[spec["shape"]]
        lo = 0.5 if spec["kind"] in ("Mul", "Div") else -0.5
        array = self.small(shape, lo, lo + 1.0)
        if spec["kind"] == "Pow":
            array = np.full(shape, 2.0, np.float32)  # a real power of any base
        value = self.init("k", array)
        (y,) = self.node(spec["kind"], [x.name, value])
        return T(y, x.c, x.h, x.w)

    def _residual(self, spec: dict, x: T) -> T:
        b = self.apply_all(spec["branch"], x)
        if (b.c, b.h, b.w) != (x.c, x.h, x.w):
            raise ShapeError(f"residual branch turns {x} into {b}")
        (y,) = self.node(spec["kind"], [x.name, b.name])
        return T(y, x.c, x.h, x.w)

    def _concat(self, spec: dict, x: T) -> T:
        outs = [self.apply_all(branch, x) for branch in spec["branches"]]
        if len({(o.h, o.w) for o in outs}) != 1:
            raise ShapeError(f"concat branches of different H×W: {outs}")
        (y,) = self.node("Concat", [o.name for o in outs], axis=1)
        return T(y, sum(o.c for o in outs), outs[0].h, outs[0].w)

    def _split(self, spec: dict, x: T) -> T:
        sizes = spec["sizes"]
        if sum(sizes) != x.c or len(sizes) != len(spec["branches"]) or min(sizes) < 1:
            raise ShapeError(f"split {sizes} of {x.c} channels")
        if spec.get("unused") and len(sizes) < 2:
            raise ShapeError("an unused Split part needs another part")
        if self.opset >= 13:
            sizes_name = self.init("split", np.array(sizes, np.int64))
            parts = self.node("Split", [x.name, sizes_name], n_out=len(sizes), axis=1)
        else:
            parts = self.node("Split", [x.name], n_out=len(sizes), axis=1, split=sizes)
        outs = [
            self.apply_all(branch, T(p, size, x.h, x.w))
            for p, size, branch in zip(parts, sizes, spec["branches"], strict=True)
        ]
        if spec.get("unused"):
            outs = outs[:-1]
        if len({(o.h, o.w) for o in outs}) != 1:
            raise ShapeError(f"split branches of different H×W: {outs}")
        (y,) = self.node("Concat", [o.name for o in outs], axis=1)
        return T(y, sum(o.c for o in outs), outs[0].h, outs[0].w)

    def _dead(self, spec: dict, x: T) -> T:
        self.apply_all(spec["branch"], x)
        return x

    def _side_output(self, spec: dict, x: T) -> T:
        out = self.apply_all(spec["branch"], x)
        if out.name == x.name:
            raise ShapeError("a side output needs at least one layer")
        self.extra_outputs.append(out)
        return x

    def _pad(self, spec: dict, x: T) -> T:
        t, left, b, r = spec["pads"]
        if self.opset < 11:  # Pad-2: pads and value are attributes
            pads = [0, 0, t, left, 0, 0, b, r]
            (y,) = self.node("Pad", [x.name], mode="constant", pads=pads, value=spec["value"])
            return T(y, x.c, x.h + t + b, x.w + left + r)
        value = self.init("pad_value", np.array(spec["value"], np.float32))
        if spec["axes"]:
            if self.opset < 18:
                raise ShapeError("Pad axes need opset 18")
            pads = self.init("pads", np.array([t, left, b, r], np.int64))
            axes = self.init("axes", np.array([2, 3], np.int64))
            (y,) = self.node("Pad", [x.name, pads, value, axes], mode="constant")
        else:
            pads = self.init("pads", np.array([0, 0, t, left, 0, 0, b, r], np.int64))
            (y,) = self.node("Pad", [x.name, pads, value], mode="constant")
        h, w = x.h + t + b, x.w + left + r
        if h < 1 or w < 1:
            raise ShapeError("Pad crops everything")
        return T(y, x.c, h, w)

    def _s2d(self, spec: dict, x: T) -> T:
        b = spec["b"]
        if x.h % b or x.w % b:
            raise ShapeError(f"SpaceToDepth {b} of {x.h}x{x.w}")
        (y,) = self.node("SpaceToDepth", [x.name], blocksize=b)
        return T(y, x.c * b * b, x.h // b, x.w // b)

    def _d2s(self, spec: dict, x: T) -> T:
        b = spec["b"]
        if x.c % (b * b):
            raise ShapeError(f"DepthToSpace {b} of {x.c} channels")
        attrs = {"mode": spec["mode"]} if spec["mode"] != "DCR" else {}
        (y,) = self.node("DepthToSpace", [x.name], blocksize=b, **attrs)
        return T(y, x.c // (b * b), x.h * b, x.w * b)

    # -- tails
    def tail(self, kind: str | None, x: T) -> tuple[str, list[int]]:
        if kind in (None, "none"):
            return x.name, [self.batch, x.c, x.h, x.w]
        if kind == "gap":
            (g,) = self.node("GlobalAveragePool", [x.name])
            (f,) = self.node("Flatten", [g], axis=1)
            weight = self.init("fc_W", self.he((5, x.c), x.c))
            bias = self.init("fc_B", self.small((5,), -0.1, 0.1))
            (y,) = self.node("Gemm", [f, weight, bias], transB=1)
            return y, [self.batch, 5]
        raise ValueError(f"unknown tail {kind}")


def shape_after(specs: Sequence[dict], x: T, opset: int = 17, misinferred_ok: bool = False) -> T:
    """The tensor `specs` turn `x` into (onnxruntime's sizes), without building a model.

    Raises:
        ShapeError: the specs do not fit `x`.
    """
    return _Builder(opset, 0, 1, misinferred_ok).apply_all(specs, x)


def misinferred(specs: Sequence[dict], x: T, opset: int = 17) -> bool:
    """True when onnx shape inference gets the output size of some pool of `specs` wrong."""
    builder = _Builder(opset, 0, 1, misinferred_ok=True)
    builder.apply_all(specs, x)
    return builder.misinferred


def build(
    specs: Sequence[dict],
    shape: tuple[int, int, int, int] = (1, 3, 13, 13),
    *,
    tail: str | None = "gap",
    opset: int = 17,
    seed: int = 0,
    name: str = "net",
    check_ort: bool = True,
    misinferred_ok: bool = False,
) -> onnx.ModelProto:
    """A checked model: input "x" of `shape` → specs → tail → output "y" (and side outputs).

    With `misinferred_ok`, a ceil_mode pool may keep a window that would start in the end
    padding: onnx shape inference counts it, the ONNX spec and onnxruntime do not. Such a
    model declares sizes it does not compute, so it needs a tail (the output is right) and
    only its outputs are checked against onnxruntime.

    Raises:
        ShapeError: the specs do not fit `shape`, or (with `check_ort`) onnxruntime computes
            a tensor of another shape than onnx infers.
    """
    builder = _Builder(opset, seed, shape[0], misinferred_ok)
    builder.name = name
    x = builder.apply_all(specs, T(INPUT, shape[1], shape[2], shape[3]))
    if builder.misinferred and (tail in (None, "none") or builder.extra_outputs):
        raise ShapeError("a stack onnx infers wrongly needs the tail and no side output")
    last, out_shape = builder.tail(tail, x)
    if last == INPUT:
        (last,) = builder.node("Identity", [INPUT])
    builder.rename(last, OUTPUT)
    sides = [(t.name, [shape[0], t.c, t.h, t.w]) for t in builder.extra_outputs]
    outputs = [(OUTPUT, out_shape), *sides]
    model = builder.model([(INPUT, shape)], outputs, producer="flcompile-tests")
    onnx.checker.check_model(model, full_check=True)
    if check_ort:
        check_shapes(model, outputs_only=builder.misinferred)
    return model


def check_shapes(model: onnx.ModelProto, outputs_only: bool = False) -> None:
    """Raise ShapeError when onnxruntime computes a tensor of another shape than onnx infers
    (only the graph outputs with `outputs_only`)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    values = [*([] if outputs_only else inferred.graph.value_info), *inferred.graph.output]
    expected = {vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim) for vi in values}
    got = run(model, random_input(model), extra=list(expected))
    for name, value in got.items():
        if value.shape != expected[name]:
            raise ShapeError(f"{name}: onnx infers {expected[name]}, onnxruntime {value.shape}")


# --------------------------------------------------------------------------- running


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    """A CPU session at the basic optimization level (the level `verify_split` uses)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], extra: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """All outputs of `model` (plus the `extra` intermediate tensors) on `feeds`, by name."""
    if extra:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        present = {o.name for o in copy.graph.output}
        copy.graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra if n not in present)
        model = copy
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def export(graph: gs.Graph) -> onnx.ModelProto:
    """Export a graph and check it as docs/design.md §3 asks (full check and strict inference)."""
    model = gs.export_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model


def random_input(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """A standard-normal input for the model's one input."""
    vi = model.graph.input[0]
    shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    return {vi.name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


# --------------------------------------------------------------------------- the pipeline


@dataclass
class Prepared:
    """A normalized, shape-inferred model and its fusable prefix and candidates."""

    model: onnx.ModelProto
    graph: gs.Graph
    prefix: FusablePrefix
    candidates: list[Candidate]


def prepare(model: onnx.ModelProto) -> Prepared:
    """infer shapes → normalize → infer shapes → prefix → candidates, as the CLI runs them
    (`load_model` infers shapes first; normalize needs them to resolve auto_pad)."""
    g = gs.import_onnx(infer_shapes(model, "test"))
    normalize(g)
    m = infer_shapes(gs.export_onnx(g), "test")
    g = gs.import_onnx(m)
    prefix = find_prefix(g)
    return Prepared(m, g, prefix, find_candidates(g, prefix))


@dataclass
class Compiled:
    """Everything one fused-layer plan produces."""

    prepared: Prepared
    candidate: Candidate
    block: Block
    tiling: Tiling
    tiled: TiledGraph
    cuts: list[int]
    order: list[int]
    sends: list[str]
    device: onnx.ModelProto
    edge: onnx.ModelProto
    tiled_model: onnx.ModelProto


def compile_fl(
    model: onnx.ModelProto | Prepared,
    fused: str | int,
    grid: tuple[int, int],
    cuts: Sequence[int] | int | None = None,
    order: Sequence[int] | None = None,
    reuse: bool = False,
    bounds: tuple[tuple[int, ...], tuple[int, ...]] | None = None,
    intermediate: bool = False,
) -> Compiled:
    """Tile `model` at F (a tensor name or an index into the candidates) and split it.

    Args:
        model: the original model, or its `prepare` result.
        fused: F.
        grid: (rows, columns).
        cuts: per path cut (0..L); an int applies to every path; None means L (all on device).
        order: the run order of the paths (default row-major).
        reuse: edge-side reuse: each path sends only the pieces the edge does not hold.
        bounds: the row and column boundaries of the tiles (`tiling_at`; they must make
            `grid`), or None for equal splits.
        intermediate: intermediate reuse (every path cut at the raw input; `cuts` is
            ignored): each path sends and computes only what earlier paths have not.
    """
    prep = model if isinstance(model, Prepared) else prepare(model)
    if isinstance(fused, int):
        cand = prep.candidates[fused]
    else:
        cand = next(c for c in prep.candidates if c.tensor == fused)
    block = make_block(prep.graph, prep.prefix, cand)
    tiling = make_tiling(block, grid) if bounds is None else tiling_at(block, *bounds)
    assert tiling.grid == grid, (tiling.grid, grid)
    paths, length = tiling.num_paths, len(block.nodes)
    if cuts is None:
        cuts = [length] * paths
    elif isinstance(cuts, int):
        cuts = [cuts] * paths
    order = list(range(paths)) if order is None else list(order)
    if intermediate:
        cuts = [0] * paths
        computed = computed_pieces(tiling, order)
        parts = intermediate_split(gs.import_onnx(prep.model), tiling, computed)
    elif reuse and tiling.num_paths <= MAX_REUSE_PATHS:
        geometry = tiling_geometry(tiling, block_costs(prep.graph, block))
        sends = [
            (p, [(geometry.tensors[t], pieces) for t, pieces in entry])
            for p, entry in zip(order, geometry.sends(order, cuts), strict=True)
        ]
        parts = reuse_tile_and_split(gs.import_onnx(prep.model), tiling, cuts, order, sends)
    else:
        parts = tile_and_split(gs.import_onnx(prep.model), tiling, cuts, order)
    sends = [n for _, names in parts.sends for n in names]
    return Compiled(
        prep,
        cand,
        block,
        tiling,
        parts.tiled,
        list(cuts),
        order,
        sends,
        export(parts.device),
        export(parts.edge),
        export(parts.tiled.graph),
    )


def assert_unique_names(graph: gs.Graph) -> None:
    """Every node name is unique, and every tensor name belongs to one tensor object."""
    names = [n.name for n in graph.nodes]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    objects: dict[str, int] = {}
    for node in graph.nodes:
        for t in [*node.inputs, *node.outputs]:
            if t.name:
                assert objects.setdefault(t.name, id(t)) == id(t), f"two tensors named {t.name}"


def initializer_bytes(model: onnx.ModelProto, float_only: bool = False) -> int:
    """Bytes of the model's initializers (only the float ones when `float_only`)."""
    total = 0
    for init in model.graph.initializer:
        if float_only and init.data_type != TensorProto.FLOAT:
            continue
        total += numpy_helper.to_array(init).nbytes
    return total
